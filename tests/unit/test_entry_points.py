"""The five console scripts as a person and as a container runtime run them.

Each script runs as a real process: the installed ``.venv/bin/<name>`` when ``pip install -e .``
has put it there, else ``python -c 'from <name>.cli import main; ...'`` from the repo.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.version import __version__

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ["danm", "fakeipam", "netwatcher", "svcwatcher", "webhook"]
CNI_SCRIPTS = ["danm", "fakeipam"]


def _command(name: str) -> list[str]:
    installed = Path(sys.executable).parent / name
    if installed.is_file() and os.access(installed, os.X_OK):
        return [str(installed)]
    return [sys.executable, "-c", f"import sys; from {name}.cli import main; sys.exit(main())"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    return {**env, **extra}


def _run(
    name: str, *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*_command(name), *args],
        cwd=REPO,
        env=env if env is not None else _clean_env(),
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name: str) -> None:
    done = _run(name, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: {name}" in done.stdout.decode()


@pytest.mark.parametrize("name", SCRIPTS)
def test_version_flag(name: str) -> None:
    done = _run(name, "--version")
    assert done.returncode == 0, done.stderr
    assert __version__ in done.stdout.decode()


@pytest.mark.parametrize("name", CNI_SCRIPTS)
def test_cni_version_as_a_runtime_calls_it(name: str) -> None:
    done = _run(name, env=_clean_env(CNI_COMMAND="VERSION"), stdin=b'{"cniVersion":"1.0.0"}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "cniVersion": "1.0.0",
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }


@pytest.mark.parametrize("name", CNI_SCRIPTS)
def test_no_arguments_and_no_cni_command_is_a_usage_hint(name: str) -> None:
    done = _run(name)
    assert done.returncode == 2
    assert done.stdout == b""
    assert "CNI_COMMAND" in done.stderr.decode()


@pytest.mark.parametrize("name", CNI_SCRIPTS)
def test_unknown_flag_is_an_argparse_error(name: str) -> None:
    assert _run(name, "--frobnicate").returncode == 2


def test_fakeipam_add_as_a_delegate_calls_it() -> None:
    config = {
        "cniVersion": "0.4.0",
        "name": "macvlan-v4",
        "type": "macvlan",
        "ipam": {"type": "fakeipam", "ips": [{"ipcidr": "192.168.1.65/26", "version": 4}]},
    }
    env = _clean_env(
        CNI_COMMAND="ADD",
        CNI_CONTAINERID="c1",
        CNI_NETNS="/var/run/netns/x",
        CNI_IFNAME="net1",
        CNI_PATH="/opt/cni/bin",
    )
    done = _run("fakeipam", env=env, stdin=json.dumps(config).encode())
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout) == {
        "cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "192.168.1.65/26"}],
    }


# ------------------------------------------------------------------------------------------
# The CNI verbs in-process (same code the processes above run, minus the process).

ENV = {
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/var/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def _cni(module: Any, command: str, config: dict[str, Any]) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    code = module.run_cni(
        {**ENV, "CNI_COMMAND": command}, io.BytesIO(json.dumps(config).encode()), out, err
    )
    return code, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def _danm_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    # NB: never the real /var/log/danm.log or /var/lib/danm from a unit test.
    return {
        "cniVersion": "1.1.0",
        "name": "n",
        "type": "danm",
        "logFile": str(tmp_path / "danm.log"),
        "stateDir": str(tmp_path / "state"),
        **extra,
    }


def test_danm_status_reports_50_when_the_api_cannot_be_reached(tmp_path: Path) -> None:
    from danm import cli

    config = _danm_config(tmp_path, kubeconfig=str(tmp_path / "missing-kubeconfig"))
    code, body, _ = _cni(cli, "STATUS", config)
    assert code == 1
    assert body["code"] == 50


def test_danm_add_with_a_bad_config_key_is_an_invalid_config_error(tmp_path: Path) -> None:
    from danm import cli

    code, body, _ = _cni(cli, "ADD", _danm_config(tmp_path, cniDir="relative/dir"))
    assert code == 1
    assert body["code"] == 7
    assert "cniDir" in body["msg"]


FAKE_CONF: dict[str, Any] = {
    "name": "sriov-test",
    "type": "sriov",
    "ipam": {
        "type": "fakeipam",
        "ips": [
            {"ipcidr": "192.168.1.65/26", "version": 4},
            {"ipcidr": "2001:db8::41/64", "version": 6},
        ],
    },
}


@pytest.mark.parametrize(
    ("version", "ips"),
    [
        (
            "0.3.1",
            [
                {"version": "4", "address": "192.168.1.65/26"},
                {"version": "6", "address": "2001:db8::41/64"},
            ],
        ),
        ("1.0.0", [{"address": "192.168.1.65/26"}, {"address": "2001:db8::41/64"}]),
        ("1.1.0", [{"address": "192.168.1.65/26"}, {"address": "2001:db8::41/64"}]),
    ],
)
def test_fakeipam_add_echoes_ips_in_the_config_version(version: str, ips: list[Any]) -> None:
    from fakeipam import cli

    code, body, _ = _cni(cli, "ADD", {**FAKE_CONF, "cniVersion": version})
    assert code == 0
    assert body == {"cniVersion": version, "ips": ips}


@pytest.mark.parametrize(
    ("ipam", "message"),
    [
        ({"type": "fakeipam"}, "No IP was passed to fake IPAM"),
        ({"type": "fakeipam", "ips": []}, "No IP was passed to fake IPAM"),
        (None, "no ipam section"),
        ({"type": "fakeipam", "ips": "10.0.0.1/24"}, "ipam.ips must be a list"),
        (
            {"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.300/24"}]},
            "Unable to parse the given IpamConfig.IpCidr: 10.0.0.300/24",
        ),
        (
            {"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.3"}]},
            "Unable to parse the given IpamConfig.IpCidr: 10.0.0.3",
        ),
        (
            {"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.3/24", "version": 6}]},
            "says version 6 but is an IPv4 address",
        ),
    ],
)
def test_fakeipam_add_rejects_bad_ipam(ipam: Any, message: str) -> None:
    from fakeipam import cli

    config = {**FAKE_CONF, "cniVersion": "1.0.0", "ipam": ipam}
    code, body, _ = _cni(cli, "ADD", config)
    assert code == 1
    assert body["code"] == 7
    assert message in body["msg"]


@pytest.mark.parametrize(
    ("command", "version"),
    [("DEL", "0.3.1"), ("CHECK", "0.4.0"), ("STATUS", "1.1.0"), ("GC", "1.1.0")],
)
def test_fakeipam_other_verbs_succeed_silently(command: str, version: str) -> None:
    from fakeipam import cli

    assert _cni(cli, command, {**FAKE_CONF, "cniVersion": version}) == (0, None, "")
