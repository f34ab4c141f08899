"""The production form of the CNI binaries: ``danm`` and ``fakeipam`` as built by
``common.cni.bundle`` (``make cni-bundle``), run by a bare interpreter as a node runs them.

Checked: the archives answer VERSION; an ADD/CHECK/DEL of a macvlan connection with DANM IPAM
works through the bundled ``danm`` with the bundled ``fakeipam`` as the delegate's IPAM; and
neither archive imports anything from outside itself and the standard library, even with a
``PYTHONPATH`` pointing at this repository's sources (an audit wrapper lists, at exit, every
loaded module whose file is elsewhere).

``BundledDanmRunner`` and ``bundle_interpreter`` are also used by tests/bench/bench_danm.py.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.cni.bundle import BUNDLES, DEFAULT_INTERPRETER, build
from common.model.resources import DANMEPS
from tests.e2e.cni.conftest import PARENT, Node
from tests.e2e.cni.harness import REFERENCE_PLUGINS, REPO_ROOT, Cluster, DanmRunner, links
from tests.netns_helpers import requires_netns

pytestmark = [pytest.mark.e2e]

NS = "team-z"
NODE_PYTHON = DEFAULT_INTERPRETER.split()[0]
ISOLATED_FLAGS = "-IS"
# NB: the audit runs the archive the way CPython runs a zipapp (the archive as sys.path[0],
# its __main__ as the main module) and reports every module loaded from anywhere else.
AUDIT_WRAPPER = """\
import atexit, json, sys, sysconfig

ARCHIVE = {archive!r}
REPORT = {report!r}
NAME = {name!r}
ROOTS = tuple(
    path.rstrip("/") + "/"
    for path in {{sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"), ARCHIVE}}
)


def _audit():
    foreign = sorted(
        f"{{name}}={{module.__file__}}"
        for name, module in list(sys.modules.items())
        if name != "__main__"
        and getattr(module, "__file__", None)
        and not module.__file__.startswith(ROOTS)
    )
    with open(REPORT, "a") as report:
        report.write(json.dumps({{"binary": NAME, "foreign": foreign}}) + "\\n")


atexit.register(_audit)
import runpy

runpy.run_path(ARCHIVE, run_name="__main__")
"""


@functools.cache
def bundle_interpreter() -> str:
    """The shebang for bundles run here: the node's ``python3`` if it matches our version.

    NB: the archive carries bytecode of this interpreter's version; another minor version would
    still work (from the sources beside it) but would not be the production form.
    """
    try:
        version = subprocess.run(
            [NODE_PYTHON, "-IS", "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = ""
    if version == str(sys.version_info[:2]):
        return f"{NODE_PYTHON} {ISOLATED_FLAGS}"
    base: str = getattr(sys, "_base_executable", sys.executable)  # NB: the venv's own python
    return f"{base} {ISOLATED_FLAGS}"


@dataclass
class BundledDanmRunner(DanmRunner):
    """``DanmRunner`` on a bundled ``danm``, with ``bin_dir`` (its ``fakeipam``) on CNI_PATH."""

    bin_dir: Path = Path("/opt/cni/bin")
    extra_env: dict[str, str] = field(default_factory=dict)

    def command(self, command: str, **kwargs: Any) -> tuple[list[str], dict[str, str]]:
        argv, env = super().command(command, **kwargs)
        argv[-1] = str(self.bin_dir / "danm")
        env["CNI_PATH"] = f"{REFERENCE_PLUGINS}:{self.bin_dir}"
        env.update(self.extra_env)
        return argv, env


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cni-bin")
    build(directory, bundle_interpreter())
    return directory


@pytest.fixture
def audited_dir(bundle_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A bin dir of audit wrappers around the bundles, and the report file they append to."""
    wrappers = tmp_path / "audited-bin"
    wrappers.mkdir()
    report = tmp_path / "audit.jsonl"
    for spec in BUNDLES:
        wrapper = wrappers / spec.name
        source = AUDIT_WRAPPER.format(
            archive=str(bundle_dir / spec.name), report=str(report), name=spec.name
        )
        wrapper.write_text(f"#!{bundle_interpreter()}\n{source}")
        wrapper.chmod(0o755)
    return wrappers, report


def _run(binary: Path, env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary)],
        input=stdin.decode(),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _reports(report: Path) -> list[dict[str, Any]]:
    lines = report.read_text().splitlines() if report.exists() else []
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("name", ["danm", "fakeipam"])
def test_each_bundle_answers_version(bundle_dir: Path, name: str) -> None:
    done = _run(bundle_dir / name, {"CNI_COMMAND": "VERSION"})

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    assert (bundle_dir / name).read_bytes().startswith(f"#!{bundle_interpreter()}\n".encode())


def test_bundled_fakeipam_add_echoes_the_addresses_without_outside_imports(
    audited_dir: tuple[Path, Path],
) -> None:
    wrappers, report = audited_dir
    config = {
        "cniVersion": "0.4.0",
        "name": "net",
        "type": "macvlan",
        "ipam": {"type": "fakeipam", "ips": [{"ipcidr": "10.1.0.5/24", "version": 4}]},
    }
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/var/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(wrappers),
        "PYTHONPATH": str(REPO_ROOT),
    }

    done = _run(wrappers / "fakeipam", env, json.dumps(config).encode())

    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ips"] == [{"version": "4", "address": "10.1.0.5/24"}]
    assert _reports(report) == [{"binary": "fakeipam", "foreign": []}]


@requires_netns
@pytest.mark.netns
def test_add_check_del_through_the_bundles_import_only_the_bundle_and_stdlib(
    cluster: Cluster,
    node: Node,
    pod_netns: Callable[[], str],
    audited_dir: tuple[Path, Path],
) -> None:
    wrappers, report = audited_dir
    cluster.namespace(NS)
    cluster.network(
        "DanmNet",
        "ext",
        namespace=NS,
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.96.0.0/24",
    )
    cluster.pod("web", NS, connections=[{"network": "ext", "ip": "dynamic"}])
    netns = pod_netns()
    # NB: with -I lost, a module missing from the bundle would quietly load from PYTHONPATH.
    runner = BundledDanmRunner(
        node.host,
        node.runner.kubeconfig,
        node.runner.workdir,
        bin_dir=wrappers,
        extra_env={"PYTHONPATH": str(REPO_ROOT)},
    )
    pod = (NS, "web")

    result = runner.run("ADD", container_id="c-web", netns=netns, pod=pod).ok()
    (ip,) = result["ips"]
    assert ip["address"].startswith("10.96.0.")
    assert links(netns)["eth0"]["kind"] == "macvlan"
    (ep,) = cluster.danmeps(NS)
    assert ep["spec"]["Interface"]["Address"] == ip["address"]
    config = runner.config(prevResult=result)
    runner.run("CHECK", config=config, container_id="c-web", netns=netns, pod=pod).ok()
    runner.run("DEL", container_id="c-web", netns=netns, pod=pod).ok()
    runner.run("STATUS", config=runner.config(cniVersion="1.1.0")).ok()

    assert "eth0" not in links(netns)
    assert cluster.api.list(DANMEPS, NS).get("items") == []
    reports = _reports(report)
    assert [r["binary"] for r in reports].count("danm") == 4
    assert "fakeipam" in {r["binary"] for r in reports}  # NB: the macvlan delegate's IPAM
    assert [r["foreign"] for r in reports] == [[]] * len(reports)


@requires_netns
@pytest.mark.netns
def test_plain_bundle_add_and_del_as_the_runtime_runs_it(
    cluster: Cluster, node: Node, pod_netns: Callable[[], str], bundle_dir: Path
) -> None:
    cluster.namespace(NS)
    cluster.network(
        "DanmNet",
        "ext",
        namespace=NS,
        network_type="macvlan",
        host_device=PARENT,
        cidr="10.97.0.0/24",
    )
    cluster.pod("two", NS, connections=[{"network": "ext", "ip": "dynamic"}] * 2)
    netns = pod_netns()
    runner = BundledDanmRunner(
        node.host, node.runner.kubeconfig, node.runner.workdir, bin_dir=bundle_dir
    )

    result = runner.run("ADD", container_id="c-two", netns=netns, pod=(NS, "two")).ok()

    assert [i["name"] for i in result["interfaces"]] == ["eth0", "eth1"]
    assert {links(netns)[name]["kind"] for name in ("eth0", "eth1")} == {"macvlan"}
    assert len(cluster.danmeps(NS)) == 2
    runner.run("DEL", container_id="c-two", netns=netns, pod=(NS, "two")).ok()
    assert not {"eth0", "eth1"} & set(links(netns))
    assert cluster.danmeps(NS) == []
    assert runner.records() == []
