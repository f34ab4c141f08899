"""``fakeipam.lean`` answers exactly what the full skeleton path answers, or defers to it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.cni.version import SUPPORTED_VERSIONS
from fakeipam import cli, lean, plugin

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c0ffee",
    "CNI_NETNS": "/var/run/netns/p",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}
V4 = {"ipcidr": "192.168.1.65/26", "version": 4}
V6 = {"ipcidr": "2001:db8::41/64", "version": 6}


def conf(version: str = "0.3.1", ips: Any = (V4,), **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": "net1",
        "type": "macvlan",
        "ipam": {"type": "fakeipam", "ips": list(ips)},
        **extra,
    }


def full_answer(environ: dict[str, str], stdin: bytes) -> tuple[int, str]:
    out = io.StringIO()
    code = plugin.run_cni(environ, io.BytesIO(stdin), out, io.StringIO())
    return code, out.getvalue()


def test_versions_match_the_skeleton() -> None:
    assert lean.SUPPORTED_VERSIONS == SUPPORTED_VERSIONS


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(
    "ips",
    [
        pytest.param([V4], id="v4"),
        pytest.param([V6, V4], id="v6-v4"),
        pytest.param([{"ipcidr": "10.0.0.5/24"}], id="no-version"),
        pytest.param([{"ipcidr": "10.0.0.5/24", "version": "4"}], id="string-version"),
    ],
)
def test_well_formed_add_is_byte_identical_to_the_full_path(
    version: str, ips: list[dict[str, Any]]
) -> None:
    stdin = json.dumps(conf(version, ips)).encode()
    answer = lean.answer_add(ENV, stdin)
    assert answer is not None
    assert (0, answer) == full_answer(ENV, stdin)


@pytest.mark.parametrize(
    ("environ", "config"),
    [
        pytest.param({**ENV, "CNI_COMMAND": "DEL"}, conf(), id="del"),
        pytest.param({**ENV, "CNI_COMMAND": "CHECK"}, conf("1.0.0"), id="check"),
        pytest.param({**ENV, "CNI_NETNS": ""}, conf(), id="no-netns"),
        pytest.param({**ENV, "CNI_CONTAINERID": "-bad"}, conf(), id="bad-container-id"),
        pytest.param({**ENV, "CNI_CONTAINERID": "ok\n"}, conf(), id="id-with-newline"),
        pytest.param({**ENV, "CNI_IFNAME": "a" * 16}, conf(), id="long-ifname"),
        pytest.param({**ENV, "CNI_IFNAME": ".."}, conf(), id="dotdot-ifname"),
        pytest.param(ENV, conf("0.2.0"), id="old-version"),
        pytest.param(ENV, conf(""), id="empty-version"),
        pytest.param(ENV, {**conf(), "name": "bad name"}, id="bad-name"),
        pytest.param(ENV, conf(ips=[]), id="no-ips"),
        pytest.param(ENV, conf(ips=[{"ipcidr": "10.0.0.300/24"}]), id="bad-ip"),
        pytest.param(ENV, conf(ips=[{"ipcidr": "10.0.0.3"}]), id="no-prefix"),
        pytest.param(ENV, conf(ips=[{"ipcidr": "10.0.0.3/24", "version": 6}]), id="wrong-family"),
        pytest.param(ENV, conf(ips=["10.0.0.3/24"]), id="entry-not-object"),
        pytest.param(ENV, {k: v for k, v in conf().items() if k != "ipam"}, id="no-ipam"),
    ],
)
def test_anything_else_defers_to_the_full_path(
    environ: dict[str, str], config: dict[str, Any]
) -> None:
    stdin = json.dumps(config).encode()
    assert lean.answer_add(environ, stdin) is None

    out = io.StringIO()
    code = cli.run_cni(environ, io.BytesIO(stdin), out, io.StringIO())
    assert (code, out.getvalue()) == full_answer(environ, stdin)


@pytest.mark.parametrize("stdin", [b"", b"{", b"[]", b"\xff"])
def test_undecodable_config_defers_to_the_full_path(stdin: bytes) -> None:
    assert lean.answer_add(ENV, stdin) is None
    out = io.StringIO()
    assert (cli.run_cni(ENV, io.BytesIO(stdin), out, io.StringIO()), out.getvalue()) == (
        full_answer(ENV, stdin)
    )


_LEAN_PROBE = """
import io, json, sys
from fakeipam import cli
out = io.StringIO()
code = cli.run_cni(json.loads(sys.argv[1]), io.BytesIO(sys.argv[2].encode()), out, io.StringIO())
print(json.dumps([code, out.getvalue(), sorted(
    m for m in ("common.cni.skel", "common.cni.types", "dataclasses") if m in sys.modules
)]))
"""


def test_well_formed_add_loads_neither_the_skeleton_nor_dataclasses() -> None:
    # NB: a fresh interpreter, because this test process has long imported everything.
    probe = subprocess.run(
        [sys.executable, "-c", _LEAN_PROBE, json.dumps(ENV), json.dumps(conf())],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    code, answer, heavy = json.loads(probe.stdout)
    assert (code, answer) == full_answer(ENV, json.dumps(conf()).encode())
    assert heavy == []


DEL_ENV = {k: v for k, v in ENV.items() if k != "CNI_NETNS"} | {"CNI_COMMAND": "DEL"}


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize(
    "environ", [pytest.param(DEL_ENV, id="no-netns"), pytest.param({**ENV, "CNI_COMMAND": "DEL"})]
)
def test_well_formed_del_is_identical_to_the_full_path(
    version: str, environ: dict[str, str]
) -> None:
    # NB: DANM frees its own addresses: DEL needs no valid ipam section, on either path.
    stdin = json.dumps({**conf(version), "ipam": {"type": "fakeipam"}}).encode()
    assert lean.answer_del(environ, stdin) == ""

    out = io.StringIO()
    assert (cli.run_cni(environ, io.BytesIO(stdin), out, io.StringIO()), out.getvalue()) == (0, "")
    assert full_answer(environ, stdin) == (0, "")


@pytest.mark.parametrize(
    ("environ", "stdin"),
    [
        pytest.param(ENV, json.dumps(conf()).encode(), id="add"),
        pytest.param({**DEL_ENV, "CNI_PATH": ""}, json.dumps(conf()).encode(), id="no-path"),
        pytest.param(
            {**DEL_ENV, "CNI_CONTAINERID": "-x"}, json.dumps(conf()).encode(), id="bad-id"
        ),
        pytest.param({**DEL_ENV, "CNI_IFNAME": "a/b"}, json.dumps(conf()).encode(), id="bad-if"),
        pytest.param(DEL_ENV, json.dumps(conf("0.2.0")).encode(), id="old-version"),
        pytest.param(DEL_ENV, json.dumps({**conf(), "name": ""}).encode(), id="no-name"),
        pytest.param(DEL_ENV, b"{", id="undecodable"),
    ],
)
def test_any_other_del_defers_to_the_full_path(environ: dict[str, str], stdin: bytes) -> None:
    assert lean.answer_del(environ, stdin) is None

    out = io.StringIO()
    code = cli.run_cni(environ, io.BytesIO(stdin), out, io.StringIO())
    assert (code, out.getvalue()) == full_answer(environ, stdin)
