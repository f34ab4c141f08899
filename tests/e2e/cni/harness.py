"""Running the real ``danm`` binary the way a container runtime does, against tests/kubeapi.

The pieces an end-to-end CNI test needs, none of which touch the runner's own namespace:

* a throwaway "host" network namespace holding the parent device (a veth) of the Pod
  interfaces. The reference ``macvlan`` plugin looks its ``master`` up in the namespace *it runs
  in*, so ``danm`` (and through it every delegate) is started inside that namespace with
  ``ip netns exec``, as a node's kubelet would start it in the node's namespace;
* :class:`NetnsForwarder`: the API stand-in listens on 127.0.0.1 of the runner's namespace,
  which a process in the host namespace cannot reach. A listening socket created *inside* the
  host namespace (sockets keep the namespace they were made in) on the same port forwards every
  connection to the stand-in, so the stand-in's kubeconfig works unchanged in there, and
  "the API is down" is simply ``forwarder.stop()``;
* :class:`DanmRunner`: the stdin config, the ``CNI_*`` environment, ``CNI_PATH`` with
  /usr/lib/cni and our ``fakeipam``, and the parsed stdout;
* :class:`Cluster`: Namespaces, Pods and networks through the real API client.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.io.kube import AlreadyExists, KubernetesApi, NotFound
from common.model.resources import (
    CLUSTERNETWORKS,
    CRDS,
    DANMEPS,
    DANMNETS,
    NAMESPACES,
    PODS,
    TENANTNETWORKS,
    Resource,
)
from tests.netns_helpers import netns_path

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
DANM_BINARY = VENV_BIN / "danm"
REFERENCE_PLUGINS = "/usr/lib/cni"
CNI_PATH = f"{REFERENCE_PLUGINS}:{VENV_BIN}"
CRD_FILES = (
    REPO_ROOT / "integration/crds/lightweight/DanmNet.yaml",
    REPO_ROOT / "integration/crds/production/DanmEp.yaml",
    REPO_ROOT / "integration/crds/production/TenantNetwork.yaml",
    REPO_ROOT / "integration/crds/production/ClusterNetwork.yaml",
    REPO_ROOT / "integration/crds/production/TenantConfig.yaml",
)
RESOURCE_OF_KIND: dict[str, Resource] = {
    "DanmNet": DANMNETS,
    "TenantNetwork": TENANTNETWORKS,
    "ClusterNetwork": CLUSTERNETWORKS,
}
DANM_TIMEOUT_S = 120


# --------------------------------------------------------------------------------------------
# API access from inside a namespace


class NetnsForwarder:
    """Forward TCP connections made to 127.0.0.1:``port`` inside ``netns`` to ``target``."""

    def __init__(self, netns: str, target: tuple[str, int]) -> None:
        from pyroute2 import netns as pyroute_netns

        self.target = target
        self.listener: socket.socket = pyroute_netns.create_socket(
            netns=netns_path(netns),
            family=socket.AF_INET,
            socket_type=socket.SOCK_STREAM,
            flags=0,
        )
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", target[1]))
        self.listener.listen(256)
        self._stop = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="netns-fwd", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            # NB: a relay that waits for ACKs before passing on small writes (Nagle + delayed
            # ACK) stalls the TLS handshake ~40 ms: an artefact of this harness, not of a cluster.
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    client.close()
                    upstream.close()
                    return
                self._connections.update((client, upstream))
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            pump.start()
            self._threads.append(pump)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        peers = {client: upstream, upstream: client}
        try:
            for sock in peers:
                sock.setblocking(True)
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                for sock in peers:
                    self._connections.discard(sock)
                    sock.close()

    def stop(self) -> None:
        """Close the listener and every forwarded connection: the API looks unreachable."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for sock in list(self._connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._acceptor.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)


# --------------------------------------------------------------------------------------------
# The cluster


def load_crds() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in CRD_FILES:
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


@dataclass
class Cluster:
    api: KubernetesApi

    def install_crds(self) -> None:
        for crd in load_crds():
            with contextlib.suppress(AlreadyExists):
                self.api.create(CRDS, None, crd)

    def namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        with contextlib.suppress(AlreadyExists):
            self.api.create(NAMESPACES, None, body)

    def pod(
        self,
        name: str,
        namespace: str,
        *,
        connections: list[dict[str, Any]] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        if connections is not None:
            metadata["annotations"] = {"danm.k8s.io/interfaces": json.dumps(connections)}
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
        }
        return self.api.create(PODS, namespace, body)

    def network(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "",
        network_id: str = "",
        network_type: str = "",
        allowed_tenants: list[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        resource = RESOURCE_OF_KIND[kind]
        metadata: dict[str, Any] = {"name": name}
        if resource.namespaced:
            metadata["namespace"] = namespace
        spec: dict[str, Any] = {"NetworkID": network_id or name, "Options": options}
        if network_type:
            spec["NetworkType"] = network_type
        if allowed_tenants is not None:
            spec["AllowedTenants"] = allowed_tenants
        body = {"apiVersion": "danm.k8s.io/v1", "kind": kind, "metadata": metadata, "spec": spec}
        return self.api.create(resource, namespace or None, body)

    def get_network(self, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
        return self.api.get(RESOURCE_OF_KIND[kind], namespace or None, name)

    def danmeps(self, namespace: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api.list(DANMEPS, namespace).get("items") or []
        return items

    def exists(self, resource: Resource, namespace: str | None, name: str) -> bool:
        try:
            self.api.get(resource, namespace, name)
        except NotFound:
            return False
        return True


def allocated_offsets(network: Mapping[str, Any]) -> set[int]:
    """Bit positions set in a network's IPv4 ``alloc``."""
    from common.ipam.bitarray import BitArray

    alloc = network["spec"]["Options"].get("alloc", "")
    if not alloc:
        return set()
    bits = BitArray.from_base64(alloc)
    return {i for i in range(len(bits)) if bits.get(i)}


# --------------------------------------------------------------------------------------------
# Running danm


@dataclass(frozen=True)
class CniOutcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def body(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None

    def ok(self) -> Any:
        assert self.returncode == 0, f"danm failed: {self.stdout}\n{self.stderr}"
        return self.body


@dataclass
class DanmRunner:
    """``danm`` in ``host_netns``, with a per-test state dir, cniDir and log file."""

    host_netns: str
    kubeconfig: Path
    workdir: Path
    cni_version: str = "1.0.0"
    extra_config: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def cni_dir(self) -> Path:
        return self.workdir / "net.d"

    @property
    def log_file(self) -> Path:
        return self.workdir / "danm.log"

    def config(self, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "cniVersion": self.cni_version,
            "name": "danm",
            "type": "danm",
            "kubeconfig": str(self.kubeconfig),
            "cniDir": str(self.cni_dir),
            "stateDir": str(self.state_dir),
            "logFile": str(self.log_file),
            "delegateTimeoutSeconds": 30,
            **self.extra_config,
        }
        config.update(overrides)
        return config

    def command(
        self,
        command: str,
        *,
        container_id: str = "",
        netns: str = "",
        pod: tuple[str, str] | None = None,
        ifname: str = "eth0",
    ) -> tuple[list[str], dict[str, str]]:
        env = {
            "CNI_COMMAND": command,
            "CNI_PATH": CNI_PATH,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        if container_id:
            env["CNI_CONTAINERID"] = container_id
            env["CNI_IFNAME"] = ifname
        if netns:
            env["CNI_NETNS"] = netns
        if pod is not None:
            namespace, name = pod
            env["CNI_ARGS"] = (
                f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
                f"K8S_POD_INFRA_CONTAINER_ID={container_id}"
            )
        argv = ["ip", "netns", "exec", self.host_netns, str(DANM_BINARY)]
        return argv, env

    def run(
        self,
        command: str,
        *,
        config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> CniOutcome:
        argv, env = self.command(command, **kwargs)
        stdin = json.dumps(dict(config) if config is not None else self.config()).encode()
        done = subprocess.run(
            argv, input=stdin, env=env, capture_output=True, timeout=DANM_TIMEOUT_S, check=False
        )
        return CniOutcome(
            done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode()
        )

    def start(self, command: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``danm`` without waiting (for concurrency tests); feed stdin yourself."""
        argv, env = self.command(command, **kwargs)
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )

    def records(self) -> list[str]:
        if not self.state_dir.is_dir():
            return []
        return sorted(p.name for p in self.state_dir.glob("*.json"))


# --------------------------------------------------------------------------------------------
# Looking into a Pod namespace (raw pyroute2, independent of the adapter under test)


@contextlib.contextmanager
def ipr_in(netns: str) -> Iterator[Any]:
    from pyroute2 import IPRoute

    ipr = IPRoute(netns=netns_path(netns) if "/" not in netns else netns, flags=0)
    try:
        yield ipr
    finally:
        ipr.close()


def links(netns: str) -> dict[str, dict[str, Any]]:
    """Interfaces of ``netns`` by name: kind, MAC, state."""
    found: dict[str, dict[str, Any]] = {}
    with ipr_in(netns) as ipr:
        for msg in ipr.link("dump"):
            info = msg.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info is not None else None
            found[msg.get("ifname")] = {
                "kind": kind,
                "mac": msg.get("address"),
                "up": bool(msg["flags"] & 1),
                "index": msg["index"],
            }
    return found


def addresses(netns: str, ifname: str) -> set[str]:
    """``addr/prefix`` of ``ifname`` in ``netns`` (link-local IPv6 left out)."""
    result: set[str] = set()
    with ipr_in(netns) as ipr:
        (link,) = ipr.link("get", ifname=ifname)
        for msg in ipr.addr("dump", index=link["index"]):
            if msg["index"] != link["index"]:
                continue
            address = msg.get("address")
            if address.startswith("fe80:"):
                continue
            result.add(f"{address}/{msg['prefixlen']}")
    return result


def routes(netns: str, *, table: int = 254, family: int = socket.AF_INET) -> set[tuple[str, str]]:
    """``(dst/len, gateway)`` of the routes with a gateway in ``table``."""
    found: set[tuple[str, str]] = set()
    with ipr_in(netns) as ipr:
        for msg in ipr.route("dump", family=family, table=table):
            if msg.get("table") != table or msg.get("gateway") is None:
                continue
            default = "0.0.0.0" if family == socket.AF_INET else "::"
            found.add((f"{msg.get('dst') or default}/{msg['dst_len']}", msg.get("gateway")))
    return found


def rules(netns: str, *, family: int = socket.AF_INET) -> set[tuple[str, int]]:
    """``(src/len, table)`` of the source-based policy rules."""
    found: set[tuple[str, int]] = set()
    with ipr_in(netns) as ipr:
        for msg in ipr.rule("dump", family=family):
            src = msg.get("src")
            if src is None:
                continue
            table = msg.get("FRA_TABLE") or msg.get("table")
            found.add((f"{src}/{msg['src_len']}", table))
    return found
