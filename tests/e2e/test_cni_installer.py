"""The CNI installer script (integration/docker/cni-installer/install.sh), run for real with sh.

A temporary directory stands in for the node's root and another for the Pod's service-account
mount; the kubeconfig it writes is loaded with the CNI's own kubeconfig reader, so a file the
CNI could not use fails here.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.io.kube_lean import load_kubeconfig

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "integration" / "docker" / "cni-installer" / "install.sh"
TEMPLATE = REPO / "integration" / "cni_config" / "00-danm.conf"

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(tmp_path: Path) -> dict[str, str]:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for binary in ("danm", "fakeipam"):
        (bundle / binary).write_bytes(b"#!/bin/sh\necho " + binary.encode() + b"\n")
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("token-one")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    host = tmp_path / "host"
    host.mkdir()
    return {
        "PATH": os.environ["PATH"],
        "HOST_ROOT": str(host),
        "BUNDLE_DIR": str(bundle),
        "SA_DIR": str(sa),
        "CNI_CONF_TEMPLATE": str(TEMPLATE),
        "DANM_API_SERVER": "https://192.0.2.10:6443",
        "ONCE": "true",
    }


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_installs_binaries_credentials_kubeconfig_and_conf(node: dict[str, str]) -> None:
    done = _run(node)
    assert done.returncode == 0, done.stderr
    host = Path(node["HOST_ROOT"])
    for binary in ("danm", "fakeipam"):
        installed = host / "opt/cni/bin" / binary
        assert installed.read_bytes() == (Path(node["BUNDLE_DIR"]) / binary).read_bytes()
        assert _mode(installed) == 0o755
    creds = host / "etc/kubernetes/danm"
    assert _mode(creds) == 0o700
    assert (creds / "token").read_text() == "token-one"
    assert _mode(creds / "token") == 0o600
    conf = json.loads((host / "etc/cni/net.d/00-danm.conf").read_text())
    template = json.loads(TEMPLATE.read_text())
    assert conf == {**template, "kubeconfig": "/etc/kubernetes/danm/danm-kubeconfig.yaml"}
    # NB: the kubeconfig names node paths; read it as the CNI would, with those files in place.
    kubeconfig = (creds / "danm-kubeconfig.yaml").read_text()
    local = kubeconfig.replace("/etc/kubernetes/danm", str(creds))
    (creds / "local.yaml").write_text(local)
    loaded = load_kubeconfig(str(creds / "local.yaml"))
    assert loaded.server == "https://192.0.2.10:6443"
    assert loaded.token == "token-one"
    assert not list(host.rglob("*.danm-install.*")), "temporary files left behind"


def test_a_second_run_keeps_what_is_current_and_an_admin_conf_when_asked(
    node: dict[str, str],
) -> None:
    assert _run(node).returncode == 0
    conf = Path(node["HOST_ROOT"]) / "etc/cni/net.d/00-danm.conf"
    conf.write_text('{"admin": "managed"}')
    again = _run({**node, "OVERWRITE_CNI_CONF": "false"})
    assert again.returncode == 0, again.stderr
    assert "installed /opt/cni/bin" not in again.stderr
    assert conf.read_text() == '{"admin": "managed"}'
    assert _run(node).returncode == 0
    assert json.loads(conf.read_text())["type"] == "danm"


def test_ipv6_service_address_is_bracketed(node: dict[str, str]) -> None:
    env = {k: v for k, v in node.items() if k != "DANM_API_SERVER"}
    env |= {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert _run(env).returncode == 0
    kubeconfig = Path(node["HOST_ROOT"]) / "etc/kubernetes/danm/danm-kubeconfig.yaml"
    assert "server: https://[fd00::1]:443" in kubeconfig.read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-token", "no service-account token"),
        ("no-binary", "fakeipam is missing from the image"),
        ("no-server", "no API server address"),
        ("no-host", "does not exist"),
    ],
)
def test_clear_errors(node: dict[str, str], change: str, message: str) -> None:
    env = dict(node)
    if change == "no-token":
        (Path(node["SA_DIR"]) / "token").unlink()
    elif change == "no-binary":
        (Path(node["BUNDLE_DIR"]) / "fakeipam").unlink()
    elif change == "no-server":
        del env["DANM_API_SERVER"]
    else:
        env["HOST_ROOT"] = node["HOST_ROOT"] + "/absent"
    done = _run(env)
    assert done.returncode == 1
    assert message in done.stderr


@pytest.fixture
def running(node: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = {**node, "ONCE": "false", "REFRESH_SECONDS": "0.2"}
    process = subprocess.Popen(["sh", str(SCRIPT)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        yield process, env
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def test_keeps_the_token_fresh_and_stops_at_once_on_term(
    running: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = running
    token = Path(env["HOST_ROOT"]) / "etc/kubernetes/danm/token"
    deadline = time.monotonic() + 20
    while not (token.exists() and token.read_text() == "token-one"):
        assert time.monotonic() < deadline, "never installed"
        time.sleep(0.05)
    (Path(env["SA_DIR"]) / "token").write_text("token-two")  # kubelet rotated it
    while token.read_text() != "token-two":
        assert time.monotonic() < deadline, "rotated token never copied to the node"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0
    assert token.exists(), "the installed files must stay when the installer stops"
