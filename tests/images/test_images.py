"""The container images of integration/docker, built and run the way the manifests run them.

Every container runs with the securityContext its manifest sets (read-only root filesystem, all
capabilities dropped but the ones granted, no privilege escalation, the manifest's user), so an
image that only works as root or with a writable root fails here, not on a cluster.

* webhook: serves a real AdmissionReview over HTTPS from the mounted certificate files.
* svcwatcher: fills Endpoints and EndpointSlices for a Service on the API stand-in.
* netwatcher: in a Pod-like network namespace (a holder container's, joined as a Pod's
  containers join the pause container's), creates and removes a VxLAN host interface as a
  DanmNet comes and goes.
* cni-installer: puts runnable ``danm`` / ``fakeipam`` zipapps and the CNI config on the "node"
  through the DaemonSet's own volume mounts.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from common.model.resources import DANMEPS, SERVICES
from tests.e2e.svcwatcher.harness import Cluster
from tests.images.docker import PYTHON_BASE, REPO, DockerDaemon, DockerError, inspect_image
from tests.kubeapi.testing import RunningKubeApi
from tests.unit.svcwatcher.builders import danmep, pod, service
from tests.unit.webhook.builders import body, network
from webhook import certs

# NB: the first test builds the base and the four images for the session (minutes, uncached).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

MANIFESTS = REPO / "integration" / "manifests"
WAIT_S = 90.0
T = TypeVar("T")


# ---- helpers


def wait_until(check: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Workload:
    """The first container of a manifest's Deployment or DaemonSet, turned into ``docker run``."""

    pod_spec: dict[str, Any]
    container: dict[str, Any]

    @classmethod
    def load(cls, relative_path: str, kind: str) -> Workload:
        for document in yaml.safe_load_all((MANIFESTS / relative_path).read_text()):
            if document and document.get("kind") == kind:
                pod_spec: dict[str, Any] = document["spec"]["template"]["spec"]
                return cls(pod_spec, pod_spec["containers"][0])
        raise AssertionError(f"no {kind} in {relative_path}")

    @property
    def security(self) -> dict[str, Any]:
        return dict(self.container.get("securityContext") or {})

    def security_flags(self) -> list[str]:
        """The securityContext as ``docker run`` flags (every field our manifests use)."""
        context = self.security
        flags: list[str] = []
        if context.get("readOnlyRootFilesystem"):
            flags.append("--read-only")
        if context.get("allowPrivilegeEscalation") is False:
            flags += ["--security-opt", "no-new-privileges"]
        capabilities = context.get("capabilities") or {}
        flags += [f"--cap-drop={cap}" for cap in capabilities.get("drop", [])]
        flags += [f"--cap-add={cap}" for cap in capabilities.get("add", [])]
        if "runAsUser" in context:
            group = context.get("runAsGroup", context["runAsUser"])
            flags += ["--user", f"{context['runAsUser']}:{group}"]
        return flags

    def run_args(
        self,
        image: str,
        *,
        volumes: dict[str, Path] | None = None,
        field_env: dict[str, str] | None = None,
        service_account: Path | None = None,
        extra_env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> list[str]:
        """Flags, image and arguments that run this container as its Pod would run it.

        ``volumes`` maps volume names to host directories (emptyDir volumes become tmpfs);
        ``field_env`` gives the values of downward-API variables; ``service_account`` is the
        directory a kubelet would mount as the Pod's service-account token. The manifest's
        ``command`` is the entrypoint, so a wrong binary path fails here.
        """
        flags = self.security_flags()
        declared = {volume["name"]: volume for volume in self.pod_spec.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            volume = declared[mount["name"]]
            if "emptyDir" in volume:
                flags += ["--tmpfs", mount["mountPath"]]
                continue
            host_dir = (volumes or {})[mount["name"]]
            read_only = ":ro" if mount.get("readOnly") else ""
            flags += ["--volume", f"{host_dir}:{mount['mountPath']}{read_only}"]
        if service_account is not None:
            flags += ["--volume", f"{service_account}:{SERVICE_ACCOUNT_MOUNT}:ro"]
        environment: dict[str, str] = {}
        for variable in self.container.get("env", []):
            if "value" in variable:
                environment[variable["name"]] = str(variable["value"])
            else:
                environment[variable["name"]] = (field_env or {})[variable["name"]]
        environment.update(extra_env or {})
        for name, value in environment.items():
            flags += ["--env", f"{name}={value}"]
        command = [*self.container.get("command", []), *self.container.get("args", [])]
        for name, value in environment.items():
            command = [part.replace(f"$({name})", value) for part in command]
        if command:
            flags += ["--entrypoint", command[0]]
        return [*flags, image, *command[1:], *extra_args]


SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def in_cluster(kubeapi: RunningKubeApi, directory: Path) -> tuple[Path, dict[str, str]]:
    """What a Pod gets to find the API: the token mount and the KUBERNETES_SERVICE_* variables.

    The containers then use the official in-cluster configuration, as in a real cluster.
    """
    directory.mkdir(mode=0o755, exist_ok=True)
    directory.chmod(0o755)
    for name, content in (
        ("token", kubeapi.token),
        ("ca.crt", kubeapi.ca_path.read_text()),
        ("namespace", "kube-system"),
    ):
        (directory / name).write_text(content)
        (directory / name).chmod(0o644)
    address = urllib.parse.urlsplit(kubeapi.url)
    assert address.hostname is not None
    assert address.port is not None
    return directory, {
        "KUBERNETES_SERVICE_HOST": address.hostname,
        "KUBERNETES_SERVICE_PORT": str(address.port),
    }


class Container:
    """``docker run -d``; ``remove()`` (always called by the fixtures) takes it away."""

    def __init__(self, daemon: DockerDaemon, name: str, *run_args: str) -> None:
        self.daemon = daemon
        self.name = name
        daemon.docker("run", "--detach", "--name", name, *run_args, timeout=120)

    def running(self) -> bool:
        return self.daemon.output("inspect", "-f", "{{.State.Running}}", self.name) == "true"

    def pid(self) -> int:
        return int(self.daemon.output("inspect", "-f", "{{.State.Pid}}", self.name))

    def logs(self) -> str:
        result = self.daemon.docker("logs", self.name, timeout=60)
        return (result.stdout + result.stderr).decode(errors="replace")

    def remove(self) -> None:
        try:
            self.daemon.docker("rm", "--force", self.name, timeout=60)
        except DockerError:
            pass


@pytest.fixture
def containers(docker_daemon: DockerDaemon) -> Iterator[list[Container]]:
    started: list[Container] = []
    try:
        yield started
    finally:
        for container in reversed(started):
            container.remove()


# ---- every component image


@pytest.mark.parametrize(
    ("component", "manifest", "kind"),
    [
        ("webhook", "webhook/deployment.yaml", "Deployment"),
        ("svcwatcher", "svcwatcher/deployment.yaml", "Deployment"),
        ("netwatcher", "netwatcher/daemonset.yaml", "DaemonSet"),
    ],
)
def test_component_image_runs_under_its_manifest_security_context(
    docker_daemon: DockerDaemon, images: dict[str, str], component: str, manifest: str, kind: str
) -> None:
    workload = Workload.load(manifest, kind)
    config = inspect_image(docker_daemon, images[component])
    assert config["Entrypoint"] == [f"/opt/danm/bin/{component}"]
    assert workload.container["command"][0] == config["Entrypoint"][0], (
        "the manifest's command is the binary the image holds"
    )
    user = workload.security.get("runAsUser", 0)
    image_user = str(config.get("User") or "0").split(":")[0]
    assert int(image_user) == user, "the image's USER is the user the manifest runs it as"
    done = docker_daemon.docker(
        "run",
        "--rm",
        "--network",
        "none",
        *workload.security_flags(),
        images[component],
        "--version",
    )
    assert done.stdout.decode().startswith(f"{component} (danm-py) ")


def test_images_contain_no_build_leftovers(
    docker_daemon: DockerDaemon, images: dict[str, str]
) -> None:
    # NB: the final stage copies only the installed environment: no sources, no pip cache, no
    # installers and no unused asyncio client (what the Dockerfiles strip).
    listing = docker_daemon.output(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        images["webhook"],
        "-c",
        "ls -d /src /root/.cache/pip /opt/danm/bin/pip /opt/danm/lib/*/site-packages/kubernetes/aio"
        " 2>/dev/null; ls /opt/danm/bin",
    )
    for leftover in ("/src", "/root/.cache/pip", "/opt/danm/bin/pip", "kubernetes/aio"):
        assert leftover not in listing
    for script in ("danm", "fakeipam", "netwatcher", "svcwatcher", "webhook"):
        assert script in listing.split()


# ---- webhook


def test_webhook_image_answers_admission_reviews_over_tls(
    docker_daemon: DockerDaemon,
    images: dict[str, str],
    containers: list[Container],
    kubeapi: RunningKubeApi,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir(mode=0o755)
    cert_dir.chmod(0o755)
    certs.write_certs(certs.issue(["danm-webhook-svc.kube-system.svc"], ["127.0.0.1"]), cert_dir)
    # NB: a Secret volume's files are readable by the Pod's user (defaultMode 0644 / fsGroup).
    for pem in cert_dir.iterdir():
        pem.chmod(0o644)
    service_account, api_env = in_cluster(kubeapi, tmp_path / "serviceaccount")
    port = free_port()
    webhook = Container(
        docker_daemon,
        f"danm-test-webhook-{os.getpid()}",
        "--network",
        "host",
        *Workload.load("webhook/deployment.yaml", "Deployment").run_args(
            images["webhook"],
            volumes={"webhook-certs": cert_dir},
            service_account=service_account,
            extra_env=api_env,
            # NB: on the host network the manifest's port may be taken; the last flag wins.
            extra_args=("--bind-address=127.0.0.1", f"--port={port}"),
        ),
    )
    containers.append(webhook)
    context = ssl.create_default_context(cafile=str(cert_dir / certs.CA_FILE))

    def healthy() -> bool:
        if not webhook.running():
            raise AssertionError(f"webhook container exited:\n{webhook.logs()}")
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{port}/healthz", context=context, timeout=5
            ) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_until(healthy, "the webhook container's /healthz over TLS")

    def review(
        obj: dict[str, Any], path: str = "/netvalidation", operation: str = "CREATE"
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {"operation": operation}
        if operation == "DELETE":
            arguments["old"] = obj
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}{path}",
            data=body(None if operation == "DELETE" else obj, **arguments),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            response: dict[str, Any] = json.loads(answer.read())["response"]
        return response

    allowed = review(network(cidr="10.20.0.0/24", host_device="ens3", vxlan=600))
    assert allowed["allowed"] is True
    patch = json.loads(base64.b64decode(allowed["patch"]))
    assert {op["path"] for op in patch} >= {"/spec/NetworkType", "/spec/Options/alloc"}

    denied = review(network(cidr="10.20.0.0/24", vlan=100, vxlan=600))
    assert denied["allowed"] is False
    assert "vlan" in denied["status"]["message"].lower()

    # A DELETE is checked against the DanmEps in the API: the container's in-cluster client.
    cluster.ensure_namespace("ns")
    cluster.create(DANMEPS, danmep("pod-a", "net", "ns", ipv4="10.20.0.5/24", name="ep-a"))
    connected = network(name="net", cidr="10.20.0.0/24", host_device="ens3", vxlan=600)
    in_use = review(connected, path="/netdeletion", operation="DELETE")
    assert in_use["allowed"] is False, in_use
    assert "pod-a" in in_use["status"]["message"]
    unused = review(
        network(name="other", cidr="10.20.0.0/24"), path="/netdeletion", operation="DELETE"
    )
    assert unused["allowed"] is True, unused


# ---- svcwatcher


def test_svcwatcher_image_fills_endpoints_and_slices(
    docker_daemon: DockerDaemon,
    images: dict[str, str],
    containers: list[Container],
    kubeapi: RunningKubeApi,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    cluster.ensure_namespace("kube-system")
    selector = {"app": "lb"}
    cluster.create(SERVICES, service("lb", selector=selector, network="internal"))
    for index in (1, 2):
        cluster.create_pod(pod(f"lb-{index}", labels=selector))
        cluster.create(
            DANMEPS,
            danmep(f"lb-{index}", "internal", ipv4=f"10.30.0.{index}/24", name=f"ep-{index}"),
        )
    service_account, api_env = in_cluster(kubeapi, tmp_path / "serviceaccount")
    watcher = Container(
        docker_daemon,
        f"danm-test-svcwatcher-{os.getpid()}",
        "--network",
        "host",
        *Workload.load("svcwatcher/deployment.yaml", "Deployment").run_args(
            images["svcwatcher"],
            field_env={"POD_NAME": "svcwatcher-image-test", "POD_NAMESPACE": "kube-system"},
            service_account=service_account,
            extra_env=api_env,
            extra_args=(f"--health-port={free_port()}",),
        ),
    )
    containers.append(watcher)

    def served(view: Any) -> bool:
        if not watcher.running():
            raise AssertionError(f"svcwatcher container exited:\n{watcher.logs()}")
        return bool(view.ready == {"10.30.0.1", "10.30.0.2"} and view.slice_ips == view.ready)

    cluster.wait_view("vnf", "lb", served, "Endpoints and slices from the svcwatcher image")


# ---- netwatcher


def _nsenter(pid: int, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _links(pid: int) -> dict[str, dict[str, Any]]:
    done = _nsenter(pid, "ip", "-j", "-d", "link", "show")
    assert done.returncode == 0, done.stderr
    return {link["ifname"]: link for link in json.loads(done.stdout)}


@pytest.fixture
def pod_netns(
    docker_daemon: DockerDaemon, images: dict[str, str], containers: list[Container]
) -> int:
    """A network namespace held by a sleeping container, as a pause container holds a Pod's."""
    holder = Container(
        docker_daemon,
        f"danm-test-netns-{os.getpid()}",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sleep",
        PYTHON_BASE,
        "infinity",
    )
    containers.append(holder)
    return holder.pid()


@pytest.fixture
def api_in_netns(pod_netns: int, tmp_path: Path) -> Iterator[Path]:
    """tests/kubeapi serving on that namespace's loopback; yields its kubeconfig."""
    workdir = tmp_path / "kubeapi"
    workdir.mkdir(mode=0o755)
    kubeconfig = workdir / "kubeconfig"
    process = subprocess.Popen(
        [
            "nsenter",
            f"--net=/proc/{pod_netns}/ns/net",
            sys.executable,
            "-m",
            "tests.kubeapi",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            # NB: certificates beside the kubeconfig, so one volume gives the container both.
            "--workdir",
            str(workdir / "pki"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), f"kubeapi did not start: {line!r}"
        yield kubeconfig
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_netwatcher_image_follows_a_danmnet_in_its_network_namespace(
    docker_daemon: DockerDaemon,
    images: dict[str, str],
    containers: list[Container],
    pod_netns: int,
    api_in_netns: Path,
    tmp_path: Path,
) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [
                "nsenter",
                f"--net=/proc/{pod_netns}/ns/net",
                "kubectl",
                f"--kubeconfig={api_in_netns}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    for setup in (
        ["ip", "link", "add", "parent0", "type", "veth", "peer", "name", "parent0-peer"],
        ["ip", "address", "add", "10.88.0.1/24", "dev", "parent0"],
        ["ip", "link", "set", "parent0", "up"],
        ["ip", "link", "set", "parent0-peer", "up"],
    ):
        done = _nsenter(pod_netns, *setup)
        assert done.returncode == 0, done.stderr
    kubectl(
        "apply", "--validate=false", "-f", str(REPO / "integration/crds/lightweight/DanmNet.yaml")
    )
    kubectl("wait", "--for=condition=Established", "crd/danmnets.danm.k8s.io", "--timeout=60s")

    watcher = Container(
        docker_daemon,
        f"danm-test-netwatcher-{os.getpid()}",
        "--network",
        f"container:danm-test-netns-{os.getpid()}",
        # NB: the stand-in's kubeconfig names its certificate files by absolute path.
        "--volume",
        f"{api_in_netns.parent}:{api_in_netns.parent}:ro",
        *Workload.load("netwatcher/daemonset.yaml", "DaemonSet").run_args(
            images["netwatcher"],
            field_env={"NODE_NAME": "image-node"},
            extra_args=(f"--kubeconfig={api_in_netns}", "--resync-seconds=2"),
        ),
    )
    containers.append(watcher)
    danmnet = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "internal", "namespace": "default"},
        "spec": {
            "NetworkID": "internal",
            "NetworkType": "ipvlan",
            "Options": {"host_device": "parent0", "vxlan": 4242, "cidr": "10.89.0.0/24"},
        },
    }
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(danmnet))

    def vxlan_up() -> dict[str, Any] | None:
        if not watcher.running():
            raise AssertionError(f"netwatcher container exited:\n{watcher.logs()}")
        link = _links(pod_netns).get("vx_internal")
        return link if link and "UP" in link.get("flags", []) else None

    link = wait_until(vxlan_up, "vx_internal up, created by the netwatcher image")
    assert link["linkinfo"]["info_kind"] == "vxlan"
    assert link["linkinfo"]["info_data"]["id"] == 4242

    kubectl("delete", "danmnet", "internal", "--namespace", "default")
    wait_until(
        lambda: "vx_internal" not in _links(pod_netns), "vx_internal removed with its DanmNet"
    )
    assert "parent0" in _links(pod_netns), "the parent device is not netwatcher's to remove"


# ---- cni-installer


def test_cni_installer_image_puts_a_runnable_cni_on_the_node(
    docker_daemon: DockerDaemon, images: dict[str, str], tmp_path: Path
) -> None:
    workload = Workload.load("danm/installer.yaml", "DaemonSet")
    host_paths = {
        volume["name"]: volume["hostPath"]["path"] for volume in workload.pod_spec["volumes"]
    }
    node_root = tmp_path / "node"
    volumes: dict[str, Path] = {}
    for name, path in host_paths.items():
        # NB: each hostPath of the DaemonSet becomes the same path below a stand-in node root.
        volumes[name] = node_root / path.lstrip("/")
        volumes[name].mkdir(parents=True)
    service_account = tmp_path / "serviceaccount"
    service_account.mkdir()
    (service_account / "token").write_text("token-from-the-pod")
    (service_account / "ca.crt").write_text(certs.issue(["ca-test"], []).ca_pem.decode())
    docker_daemon.docker(
        "run",
        "--rm",
        "--network",
        "none",
        *workload.run_args(
            images["cni-installer"],
            volumes=volumes,
            service_account=service_account,
            extra_env={"ONCE": "true", "DANM_API_SERVER": "https://192.0.2.10:6443"},
        ),
        timeout=120,
    )

    cni_bin = node_root / "opt/cni/bin"
    config = json.loads((node_root / "etc/cni/net.d/00-danm.conf").read_text())
    assert config["type"] == "danm"
    assert config["kubeconfig"] == "/etc/kubernetes/danm/danm-kubeconfig.yaml"
    kubeconfig = yaml.safe_load(
        (node_root / "etc/kubernetes/danm/danm-kubeconfig.yaml").read_text()
    )
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"
    assert (node_root / "etc/kubernetes/danm/token").read_text() == "token-from-the-pod"
    for binary in ("danm", "fakeipam"):
        path = cni_bin / binary
        assert os.access(path, os.X_OK), f"{binary} is not executable"
        # NB: run by the node's own python3 through the zipapp's shebang, as kubelet would.
        done = subprocess.run(
            [str(path)],
            env={"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"},
            input=json.dumps({"cniVersion": "1.0.0"}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{binary} VERSION: {done.stdout} {done.stderr}"
        assert "1.1.0" in json.loads(done.stdout)["supportedVersions"]
