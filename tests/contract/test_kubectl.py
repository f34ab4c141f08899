"""The real kubectl against the stand-in: apply, get, create, patch, delete, watch."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from tests.contract.conftest import KUBECTL, Kubectl
from tests.contract.crds import danmnet, danmnet_crd

pytestmark = pytest.mark.e2e

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: demo}
data:
  color: {color}
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: demo}}
spec:
  nodeName: node-1
  containers:
  - {name: app, image: nginx, ports: [{containerPort: 80}]}
  - {name: side, image: busybox}
"""


def test_apply_twice(kubectl: Kubectl, core: Any) -> None:
    first = kubectl.run("apply", "-f", "-", stdin=CONFIGMAP.replace("{color}", "red"))
    assert first.stdout.strip() == "configmap/settings created"
    second = kubectl.run(
        "apply", "--validate=false", "-f", "-", stdin=CONFIGMAP.replace("{color}", "blue")
    )
    assert second.stdout.strip() == "configmap/settings configured"
    unchanged = kubectl.run(
        "apply", "--validate=false", "-f", "-", stdin=CONFIGMAP.replace("{color}", "blue")
    )
    assert unchanged.stdout.strip() == "configmap/settings unchanged"
    stored = core.read_namespaced_config_map("settings", "default")
    assert stored.data == {"color": "blue"}
    annotation = stored.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["data"] == {"color": "blue"}


def test_get_forms_and_selectors(kubectl: Kubectl) -> None:
    kubectl.run("create", "--validate=false", "-f", "-", stdin=POD)
    kubectl.run("apply", "--validate=false", "-f", "-", stdin=CONFIGMAP.replace("{color}", "x"))
    listed = json.loads(kubectl.run("get", "pods", "-o", "json").stdout)
    assert [p["metadata"]["name"] for p in listed["items"]] == ["web"]
    assert kubectl.run("get", "cm", "-l", "app=demo", "-o", "name").stdout.split() == [
        "configmap/settings"
    ]
    assert kubectl.run("get", "cm", "-l", "app!=demo", "-o", "name").stdout.strip() == ""
    by_node = kubectl.run("get", "po", "--field-selector", "spec.nodeName=node-1", "-o", "name")
    assert by_node.stdout.split() == ["pod/web"]
    table = kubectl.run("get", "po").stdout.splitlines()
    assert table[0].split()[0] == "NAME"
    assert table[1].split()[0] == "web"
    bad = kubectl.run("get", "po", "--field-selector", "spec.bogus=1", check=False)
    assert bad.returncode != 0
    assert "field label not supported: spec.bogus" in bad.stderr
    missing = kubectl.run("get", "cm", "nope", check=False)
    assert 'configmaps "nope" not found' in missing.stderr


def test_patch_kinds(kubectl: Kubectl, core: Any) -> None:
    kubectl.run("create", "--validate=false", "-f", "-", stdin=POD)
    kubectl.run(
        "patch", "pod", "web", "-p", '{"spec":{"containers":[{"name":"side","image":"alpine"}]}}'
    )
    pod = core.read_namespaced_pod("web", "default")
    assert [(c.name, c.image) for c in pod.spec.containers] == [
        ("app", "nginx"),
        ("side", "alpine"),
    ]
    kubectl.run(
        "patch", "pod", "web", "--type", "merge", "-p", '{"metadata":{"labels":{"tier":"front"}}}'
    )
    kubectl.run(
        "patch",
        "pod",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"replace","path":"/spec/containers/0/image","value":"httpd"}]',
    )
    pod = core.read_namespaced_pod("web", "default")
    assert pod.metadata.labels == {"app": "demo", "tier": "front"}
    assert pod.spec.containers[0].image == "httpd"
    failed = kubectl.run(
        "patch",
        "pod",
        "web",
        "--type",
        "json",
        "-p",
        '[{"op":"test","path":"/spec/nodeName","value":"other"}]',
        check=False,
    )
    assert failed.returncode != 0
    assert "the server rejected our request due to an error in our request" in failed.stderr


def test_delete(kubectl: Kubectl, core: Any) -> None:
    kubectl.run("apply", "--validate=false", "-f", "-", stdin=CONFIGMAP.replace("{color}", "x"))
    assert kubectl.run("delete", "cm", "settings").stdout.strip() == (
        'configmap "settings" deleted'
    )
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_config_map("settings", "default")
    assert caught.value.status == 404


def test_get_watch(kubectl: Kubectl, core: Any) -> None:
    assert KUBECTL is not None
    core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="first"))
    )
    process = subprocess.Popen(
        [KUBECTL, "get", "cm", "-w", "--output-watch-events"],
        env=kubectl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.strip())

    def wait_for(event: list[str]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and event not in events(lines):
            time.sleep(0.05)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # NB: kubectl lists, then watches from the list's resourceVersion: once "first" is
        # printed, later writes are guaranteed to reach the watch.
        wait_for(["ADDED", "first"])
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"))
        )
        core.delete_namespaced_config_map("watched", "default")
        wait_for(["DELETED", "watched"])
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert events(lines) == [
        ["EVENT", "NAME"],
        ["ADDED", "first"],
        ["ADDED", "watched"],
        ["DELETED", "watched"],
    ]


def events(lines: list[str]) -> list[list[str]]:
    return [line.split()[:2] for line in list(lines)]


def test_generators_send_protobuf(kubectl: Kubectl, core: Any) -> None:
    assert kubectl.run("create", "namespace", "team").stdout.strip() == "namespace/team created"
    kubectl.run("create", "configmap", "gen", "-n", "team", "--from-literal=a=b")
    stored = core.read_namespaced_config_map("gen", "team")
    assert stored.data == {"a": "b"}
    assert stored.metadata.generate_name is None
    unsupported = kubectl.run("create", "secret", "generic", "s", "--from-literal=a=b", check=False)
    assert unsupported.returncode != 0


def test_apply_with_server_side_field_validation(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", "-", stdin=json.dumps(danmnet_crd()))
    created = kubectl.run("apply", "-f", "-", stdin=json.dumps(danmnet("net1")))
    assert created.stdout.strip() == "danmnet.danm.k8s.io/net1 created"
    typo = danmnet("net1", NetworkTyp="ipvlan")
    rejected = kubectl.run("apply", "-f", "-", stdin=json.dumps(typo), check=False)
    assert rejected.returncode != 0
    assert 'strict decoding error: unknown field "spec.NetworkTyp"' in rejected.stderr
    lenient = kubectl.run("apply", "--validate=false", "-f", "-", stdin=json.dumps(typo))
    assert lenient.stdout.strip() == "danmnet.danm.k8s.io/net1 configured"
