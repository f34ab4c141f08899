"""``common.io.cniexec``: finding, running and reading a CNI plugin process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from common.io.cniexec import (
    PluginFailed,
    PluginNotFound,
    PluginRequest,
    PluginTimeout,
    SubprocessExec,
    find_plugin,
    parse_plugin_error,
    parse_plugin_output,
)

# NB: a shell "plugin" that prints its environment and stdin back as a JSON result.
ECHO_PLUGIN = """#!/bin/sh
stdin=$(cat)
printf '{"env": "%s", "stdin": %s}' "$(env | sort | tr '\\n' ';')" "$stdin"
"""


def _plugin(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_plugin_takes_the_first_executable_in_path(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "p").write_text("not executable")
    expected = _plugin(second, "p", "#!/bin/sh\n")
    assert find_plugin("p", [str(first), str(second)]) == str(expected)


@pytest.mark.parametrize("name", ["", "../p", "a/b", ".."])
def test_find_plugin_refuses_paths(name: str) -> None:
    with pytest.raises(PluginNotFound):
        find_plugin(name, ["/usr/bin"])


def test_missing_plugin_names_the_search_path(tmp_path: Path) -> None:
    with pytest.raises(PluginNotFound, match=r'failed to find plugin "nope" in path \[/x, /y\]'):
        find_plugin("nope", ["/x", "/y"])


def test_run_passes_exactly_the_cni_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plugin(tmp_path, "echo", ECHO_PLUGIN)
    monkeypatch.setenv("CNI_CONF_DIR", "/leak")
    request = PluginRequest(
        command="ADD",
        container_id="c1",
        netns="/var/run/netns/x",
        ifname="net1",
        args="A=1",
        path=(str(tmp_path),),
    )

    output = SubprocessExec(search_path="/usr/bin:/bin").run(
        "echo", request, b'{"cniVersion": "1.0.0"}', timeout_s=10
    )

    assert output is not None
    env = dict(item.split("=", 1) for item in output["env"].split(";") if "=" in item)
    assert {k: v for k, v in env.items() if k.startswith("CNI_")} == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/var/run/netns/x",
        "CNI_IFNAME": "net1",
        "CNI_ARGS": "A=1",
        "CNI_PATH": str(tmp_path),
    }
    assert env["PATH"] == "/usr/bin:/bin"
    assert output["stdin"] == {"cniVersion": "1.0.0"}
    assert os.environ.get("CNI_CONF_DIR") == "/leak"


def test_a_failing_plugin_reports_its_cni_error(tmp_path: Path) -> None:
    error = '{"code": 7, "msg": "bad config", "details": "x"}'
    body = f"#!/bin/sh\necho '{error}'\necho oops >&2\nexit 1\n"
    _plugin(tmp_path, "bad", body)
    with pytest.raises(PluginFailed) as caught:
        SubprocessExec().run(
            "bad", PluginRequest(command="ADD", path=(str(tmp_path),)), b"{}", timeout_s=10
        )
    assert (caught.value.code, caught.value.msg, caught.value.details) == (7, "bad config", "x")
    assert caught.value.stderr == "oops"


def test_a_hanging_plugin_is_killed_at_the_deadline(tmp_path: Path) -> None:
    _plugin(tmp_path, "slow", "#!/bin/sh\nexec sleep 30\n")
    with pytest.raises(PluginTimeout):
        SubprocessExec().run(
            "slow", PluginRequest(command="DEL", path=(str(tmp_path),)), b"{}", timeout_s=0.3
        )


@pytest.mark.parametrize(
    ("stdout", "code"),
    [
        (b"", 999),
        (b"not json", 999),
        (b'{"code": 11, "msg": "later"}', 11),
        (b'{"code": true, "msg": "m"}', 999),
    ],
)
def test_parse_plugin_error(stdout: bytes, code: int) -> None:
    assert parse_plugin_error("p", "ADD", 1, stdout, b"err").code == code


@pytest.mark.parametrize(
    ("stdout", "expected"), [(b"", None), (b" \n", None), (b'{"a": 1}', {"a": 1})]
)
def test_parse_plugin_output(stdout: bytes, expected: object) -> None:
    assert parse_plugin_output("p", "ADD", stdout) == expected


@pytest.mark.parametrize("stdout", [b"nope", b"[1]"])
def test_unreadable_success_output_is_a_failure(stdout: bytes) -> None:
    with pytest.raises(PluginFailed) as caught:
        parse_plugin_output("p", "ADD", stdout)
    assert caught.value.code == 6
    json.dumps(caught.value.msg)
