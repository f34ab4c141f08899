"""The real webhook, as a process, behind the API stand-in, driven by kubectl and the client.

Everything is production-shaped: certificates come from ``webhook certs``, the webhook runs as
``.venv/bin/webhook`` with a kubeconfig, and it is registered with the shipped
``integration/manifests/webhook/webhook-configuration.yaml`` (only ``clientConfig.service`` is
swapped for a URL, since the stand-in resolves no Services). One stand-in and one webhook serve
the whole module; tests use their own object names.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.ipam.bitarray import BitArray
from tests.kubeapi.testing import RunningKubeApi, start_in_thread
from webhook.tenancy import PENDING_ANNOTATION

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "example"
INVALID = EXAMPLES / "invalid"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
WEBHOOK_MANIFEST = REPO / "integration" / "manifests" / "webhook" / "webhook-configuration.yaml"
CRDS = [
    REPO / "integration/crds/lightweight/DanmNet.yaml",
    REPO / "integration/crds/lightweight/DanmEp.yaml",
    REPO / "integration/crds/production/TenantNetwork.yaml",
    REPO / "integration/crds/production/ClusterNetwork.yaml",
    REPO / "integration/crds/production/TenantConfig.yaml",
]
#: Kinds the stand-in serves; example Deployments are not webhook business and are skipped.
SERVED_KINDS = {
    "Namespace",
    "Pod",
    "Service",
    "ConfigMap",
    "DanmNet",
    "TenantNetwork",
    "ClusterNetwork",
    "TenantConfig",
    "DanmEp",
}
VALID_DIRS = ["lightweight", "device_plugin", "production", "svcwatcher_demo"]
TCONF = "danm-tenant-config"


def _script(name: str) -> list[str]:
    installed = Path(sys.executable).parent / name
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", f"import sys; from {name}.cli import main; sys.exit(main())"]


@dataclass
class Cluster:
    kubeapi: RunningKubeApi
    webhook_url: str
    ca_path: Path
    log_path: Path

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeapi.kubeconfig_path),
            "HOME": str(self.kubeapi.kubeconfig_path.parent),
        }
        return subprocess.run(
            [KUBECTL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def create(self, document: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl(
            "create", "--validate=false", *extra, "-f", "-", stdin=json.dumps(document)
        )

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        done = self.kubectl(*args)
        assert done.returncode == 0, done.stderr
        loaded: dict[str, Any] = json.loads(done.stdout)
        return loaded

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        args = ["get", kind, name, "-o", "name"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args).returncode == 0


def _wait_for_port(log_path: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if "listening on https://" in line:
                return int(line.rsplit(":", 1)[1])
        if process.poll() is not None:
            raise AssertionError(f"webhook exited: {log_path.read_text()}")
        time.sleep(0.05)
    raise AssertionError(f"webhook did not start: {log_path.read_text()}")


def _registration(manifest: Path, url: str) -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    for document in documents:
        for hook in document["webhooks"]:
            path = hook["clientConfig"].pop("service")["path"]
            hook["clientConfig"]["url"] = f"{url}{path}"
    return documents


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("webhook-e2e")
    certs_dir = workdir / "certs"
    made = subprocess.run(
        [
            *_script("webhook"),
            "certs",
            "--service",
            "danm-webhook-svc",
            "--namespace",
            "kube-system",
            "--out",
            str(certs_dir),
            "--ip",
            "127.0.0.1",
            "--manifest",
            str(WEBHOOK_MANIFEST),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    kubeapi = start_in_thread(workdir / "kubeapi")
    log_path = workdir / "webhook.log"
    process = None
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *_script("webhook"),
                    "--bind-address",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--tls-cert-file",
                    str(certs_dir / "cert.pem"),
                    "--tls-private-key-file",
                    str(certs_dir / "key.pem"),
                    "--kubeconfig",
                    str(kubeapi.kubeconfig_path),
                ],
                stdout=log,
                stderr=log,
            )
        port = _wait_for_port(log_path, process)
        cluster = Cluster(kubeapi, f"https://127.0.0.1:{port}", certs_dir / "ca.pem", log_path)
        for crd in CRDS:
            done = cluster.kubectl("create", "-f", str(crd))
            assert done.returncode == 0, done.stderr
        for document in _registration(certs_dir / WEBHOOK_MANIFEST.name, cluster.webhook_url):
            done = cluster.create(document)
            assert done.returncode == 0, done.stderr
        for path in sorted(EXAMPLES.rglob("*namespace*.yaml")):
            done = cluster.kubectl("create", "-f", str(path))
            assert done.returncode == 0, done.stderr
        yield cluster
    finally:
        # NB: the stand-in goes first, so its connections to the webhook close cleanly.
        kubeapi.stop()
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _ensure(cluster: Cluster, relative: str) -> None:
    for document in _documents(EXAMPLES / relative):
        meta = document["metadata"]
        if not cluster.exists(document["kind"], meta["name"], meta.get("namespace")):
            done = cluster.create(document)
            assert done.returncode == 0, done.stderr


def _alloc_bits(config: dict[str, Any], profile: str, vni_type: str) -> set[int]:
    for device in config["hostDevices"]:
        if device["name"] == profile and device.get("vniType") == vni_type:
            bits = BitArray.from_base64(device["alloc"])
            return {v for v in range(1, 5001) if bits.get(v)}
    raise AssertionError(f"profile {profile}/{vni_type} not found")


def _header(path: Path) -> dict[str, str]:
    header = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        header[key.strip()] = value.strip()
    return header


def _tenant_network(name: str, **options: Any) -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "TenantNetwork",
        "metadata": {"name": name, "namespace": "tenant-a"},
        "spec": {"NetworkID": name[:11], "Options": options},
    }


# ---------------------------------------------------------------------------------------------


def test_valid_examples_are_accepted_and_mutated(cluster: Cluster) -> None:
    for folder in VALID_DIRS:
        for path in sorted((EXAMPLES / folder).rglob("*.yaml")):
            for document in _documents(path):
                if document["kind"] not in SERVED_KINDS or document["kind"] == "Namespace":
                    continue
                done = cluster.create(document)
                assert done.returncode == 0, f"{path}: {done.stderr}"
    management = cluster.get("danmnet", "management", "example")
    assert management["spec"]["NetworkType"] == "ipvlan"
    assert management["spec"]["Options"]["alloc"].startswith("gAAA")
    assert management["spec"]["Options"]["allocation_pool"] == {
        "start": "10.0.0.1",
        "end": "10.0.0.254",
    }
    chosen = cluster.get("tenantnetwork", "chosen-device", "tenant-a")
    assert chosen["spec"]["Options"]["vlan"] == 200
    flannel = cluster.get("tenantnetwork", "tenant-flannel", "tenant-a")
    assert flannel["spec"]["NetworkID"] == "flannel"
    macvlan = cluster.get("tenantnetwork", "tenant-macvlan", "tenant-b")
    assert macvlan["spec"]["NetworkID"] == "tmacvlan"
    sriov = cluster.get("tenantnetwork", "tenant-sriov", "tenant-b")
    assert sriov["spec"]["Options"]["vlan"] == 500
    config = cluster.get("tenantconfig", TCONF)
    assert 200 in _alloc_bits(config, "ens4", "vlan")
    assert _alloc_bits(config, "nokia.k8s.io/sriov_ens1f0", "vlan") == {500}


INVALID_FILES = sorted(INVALID.glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID_FILES, ids=[p.stem for p in INVALID_FILES])
def test_invalid_example_is_denied_with_its_message(cluster: Cluster, path: Path) -> None:
    header = _header(path)
    if "needs" in header:
        _ensure(cluster, header["needs"])
    config_before = _tenant_config_version(cluster)
    (document,) = _documents(path)
    done = cluster.kubectl("create", "--validate=false", "-f", str(path))
    assert done.returncode != 0
    assert header["denial"] in done.stderr
    assert "denied the request" in done.stderr
    meta = document["metadata"]
    assert not cluster.exists(document["kind"], meta["name"], meta.get("namespace"))
    assert _tenant_config_version(cluster) == config_before, "a denied request wrote nothing"


def _tenant_config_version(cluster: Cluster) -> str | None:
    if not cluster.exists("tenantconfig", TCONF):
        return None
    return str(cluster.get("tenantconfig", TCONF)["metadata"]["resourceVersion"])


def test_vni_reserved_on_create_and_released_on_delete(cluster: Cluster) -> None:
    _ensure(cluster, "production/01_tenantconfig.yaml")
    done = cluster.create(_tenant_network("vx-a", host_device="ens5"))
    assert done.returncode == 0, done.stderr
    vxlan = cluster.get("tenantnetwork", "vx-a", "tenant-a")["spec"]["Options"]["vxlan"]
    assert 1000 <= vxlan <= 1099 or vxlan == 1500
    config = cluster.get("tenantconfig", TCONF)
    assert vxlan in _alloc_bits(config, "ens5", "vxlan")
    pending = json.loads(config["metadata"]["annotations"][PENDING_ANNOTATION])
    assert {"network": "tenant-a/vx-a", "vni": vxlan} in [
        {"network": e["network"], "vni": e["vni"]} for e in pending
    ]

    done = cluster.kubectl("delete", "tenantnetwork", "vx-a", "-n", "tenant-a")
    assert done.returncode == 0, done.stderr
    assert vxlan not in _alloc_bits(cluster.get("tenantconfig", TCONF), "ens5", "vxlan")

    done = cluster.create(_tenant_network("vx-b", host_device="ens5"))
    assert done.returncode == 0, done.stderr
    again = cluster.get("tenantnetwork", "vx-b", "tenant-a")["spec"]["Options"]["vxlan"]
    assert again == vxlan, "the freed VNI is the lowest free one again"
    assert cluster.kubectl("delete", "tenantnetwork", "vx-b", "-n", "tenant-a").returncode == 0


def test_dry_run_reserves_nothing(cluster: Cluster) -> None:
    _ensure(cluster, "production/01_tenantconfig.yaml")
    before = cluster.get("tenantconfig", TCONF)
    done = cluster.create(
        _tenant_network("dry", host_device="ens4"), "--dry-run=server", "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spec"]["Options"]["vlan"] >= 200
    after = cluster.get("tenantconfig", TCONF)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert not cluster.exists("tenantnetwork", "dry", "tenant-a")


def test_concurrent_creations_never_share_a_vni(cluster: Cluster) -> None:
    from kubernetes import client

    _ensure(cluster, "production/01_tenantconfig.yaml")
    names = [f"conc-{i}-{uuid.uuid4().hex[:4]}" for i in range(10)]
    errors: list[BaseException] = []

    def create(name: str) -> None:
        api_client = cluster.kubeapi.api_client()
        try:
            client.CustomObjectsApi(api_client).create_namespaced_custom_object(
                "danm.k8s.io",
                "v1",
                "tenant-a",
                "tenantnetworks",
                _tenant_network(name, host_device="ens4"),
            )
        except BaseException as error:
            errors.append(error)
        finally:
            api_client.close()

    threads = [threading.Thread(target=create, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    vlans = [cluster.get("tenantnetwork", n, "tenant-a")["spec"]["Options"]["vlan"] for n in names]
    assert len(set(vlans)) == len(vlans), vlans
    assert set(vlans) <= _alloc_bits(cluster.get("tenantconfig", TCONF), "ens4", "vlan")
    for name in names:
        assert cluster.kubectl("delete", "tenantnetwork", name, "-n", "tenant-a").returncode == 0
    assert not set(vlans) & _alloc_bits(cluster.get("tenantconfig", TCONF), "ens4", "vlan")


def _danmnet(name: str, **options: Any) -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": name, "namespace": "example"},
        "spec": {"NetworkID": name[:11], "Options": options},
    }


def _danmep(network: str, pod: str) -> dict[str, Any]:
    return {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmEp",
        "metadata": {"name": f"ep-{uuid.uuid4().hex[:8]}", "namespace": "example"},
        "spec": {
            "NetworkName": network,
            "NetworkType": "ipvlan",
            "EndpointID": "x",
            "apiType": "",
            "Pod": pod,
            "Interface": {
                "Name": "eth1",
                "Address": "10.77.0.5/24",
                "AddressIPv6": "",
                "MacAddress": "fa:16:3e:00:00:01",
                "proutes": {},
                "proutes6": {},
            },
        },
    }


def _patch(cluster: Cluster, name: str, patch: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "patch", "danmnet", name, "-n", "example", "--type", "merge", "-p", json.dumps(patch)
    )


def test_update_and_delete_rules_follow_connected_pods(cluster: Cluster) -> None:
    done = cluster.create(_danmnet("upd", host_device="ens4", vlan=10, cidr="10.77.0.0/24"))
    assert done.returncode == 0, done.stderr
    endpoint = _danmep("upd", "pod-x")
    assert cluster.create(endpoint).returncode == 0

    denied = _patch(cluster, "upd", {"spec": {"Options": {"vlan": 11}}})
    assert denied.returncode != 0
    assert (
        "cannot change VNI/host_device of a network which has Pods connected to it e.g. "
        "Pod:pod-x in namespace:example" in denied.stderr
    )
    denied = _patch(cluster, "upd", {"spec": {"Options": {"cidr": "10.78.0.0/24"}}})
    assert "cannot change cidr of a network which has Pods connected" in denied.stderr
    denied = cluster.kubectl("delete", "danmnet", "upd", "-n", "example")
    assert denied.returncode != 0
    assert (
        "Network cannot be deleted because there are Pods still connected to it e.g. "
        "Pod:pod-x in namespace:example" in denied.stderr
    )
    # NB: a plain IPAM-style write (alloc only) is not held up by connected Pods.
    alloc = cluster.get("danmnet", "upd", "example")["spec"]["Options"]["alloc"]
    bits = BitArray.from_base64(alloc)
    bits.set(5)
    assert (
        _patch(cluster, "upd", {"spec": {"Options": {"alloc": bits.to_base64()}}}).returncode == 0
    )
    # NB: the rules are checked on UPDATE too (the original never registered UPDATE).
    denied = _patch(cluster, "upd", {"spec": {"Options": {"vxlan": 5}}})
    assert "VLAN ID and VxLAN ID parameters are mutually exclusive" in denied.stderr

    done = cluster.kubectl("delete", "danmep", endpoint["metadata"]["name"], "-n", "example")
    assert done.returncode == 0, done.stderr
    moved = _patch(cluster, "upd", {"spec": {"Options": {"cidr": "10.78.0.0/24", "vlan": 12}}})
    assert moved.returncode == 0, moved.stderr
    options = cluster.get("danmnet", "upd", "example")["spec"]["Options"]
    assert options["allocation_pool"] == {"start": "10.78.0.1", "end": "10.78.0.254"}
    assert options["alloc"] == "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE="
    assert cluster.kubectl("delete", "danmnet", "upd", "-n", "example").returncode == 0


def test_tenant_network_update_rules(cluster: Cluster) -> None:
    _ensure(cluster, "production/01_tenantconfig.yaml")
    assert cluster.create(_tenant_network("tupd", host_device="ens6")).returncode == 0
    denied = cluster.kubectl(
        "patch",
        "tenantnetwork",
        "tupd",
        "-n",
        "tenant-a",
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"Options": {"host_device": "ens4"}}}),
    )
    assert denied.returncode != 0
    assert "Manually changing any one of Spec.Options.host_device" in denied.stderr
    assert cluster.kubectl("delete", "tenantnetwork", "tupd", "-n", "tenant-a").returncode == 0


def _post(cluster: Cluster, path: str, data: bytes) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(cluster.ca_path))
    request = urllib.request.Request(f"{cluster.webhook_url}{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    "data",
    [b"garbage", b"[]", b'{"request": {}}', b"{" + b" " * (9 * 1024 * 1024) + b"}"],
    ids=["not-json", "not-object", "no-uid", "huge"],
)
def test_bad_input_is_400_and_the_server_lives_on(cluster: Cluster, data: bytes) -> None:
    status, answer = _post(cluster, "/netvalidation", data)
    assert status == 400
    assert answer["code"] == 400
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"kind": "Secret"}, "operation": "CREATE", "object": {}},
    }
    status, answer = _post(cluster, "/netvalidation", json.dumps(review).encode())
    assert status == 200
    assert answer["response"]["allowed"] is False
