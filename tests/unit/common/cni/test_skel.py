"""``dispatch`` driven like libcni's skel_test: a dict for the environment, buffers for streams."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.cni.skel import REQUIRED_ENV, CmdArgs, Handlers, dispatch
from common.cni.types import CniError, ErrorCode, IPConfig, Result
from common.cni.version import SUPPORTED_VERSIONS

ADD_ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c0ffee",
    "CNI_NETNS": "/var/run/netns/pod",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin:/usr/libexec/cni",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p",
}
RESULT = Result(ips=(IPConfig("10.0.0.5/24", gateway="10.0.0.1"),))


@dataclass
class Recorder:
    """Handlers that record what they received and return what the test set up."""

    calls: list[CmdArgs] = field(default_factory=list)
    raises: BaseException | None = None

    def __call__(self, args: CmdArgs) -> Result | None:
        self.calls.append(args)
        if self.raises is not None:
            raise self.raises
        return RESULT if args.command == "ADD" else None

    def handlers(self, **overrides: Any) -> Handlers:
        verbs: dict[str, Any] = {
            "add": self,
            "delete": self,
            "check": self,
            "status": self,
            "gc": self,
        }
        verbs.update(overrides)
        return Handlers(**verbs)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run(handlers: Handlers, env: dict[str, str], stdin: bytes | dict[str, Any] = b"") -> Outcome:
    data = json.dumps(stdin).encode() if isinstance(stdin, dict) else stdin
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(handlers, environ=env, stdin=io.BytesIO(data), stdout=out, stderr=err)
    return Outcome(code, out.getvalue(), err.getvalue())


def conf(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": "mynet", "type": "danm", **extra}


def env_for(command: str, **overrides: str) -> dict[str, str]:
    env = {**ADD_ENV, "CNI_COMMAND": command, **overrides}
    return {k: v for k, v in env.items() if v != ""}


# ---------------------------------------------------------------------------------------- ADD


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_add_passes_everything_and_prints_the_result_in_the_config_version(version: str) -> None:
    recorder = Recorder()
    config = conf(version, master="ens1")
    outcome = run(recorder.handlers(), env_for("ADD"), config)
    assert outcome.code == 0, outcome.stdout
    assert outcome.json == RESULT.to_json(version)
    (args,) = recorder.calls
    assert args == CmdArgs(
        command="ADD",
        container_id="c0ffee",
        netns="/var/run/netns/pod",
        ifname="eth0",
        args="IgnoreUnknown=1;K8S_POD_NAME=p",
        path=("/opt/cni/bin", "/usr/libexec/cni"),
        stdin=json.dumps(config).encode(),
        config=config,
        cni_version=version,
    )


def test_cni_versions_array_picks_the_highest_supported() -> None:
    recorder = Recorder()
    config = {"name": "mynet", "cniVersions": ["0.3.1", "1.0.0", "1.1.0", "9.0.0"]}
    outcome = run(recorder.handlers(), env_for("ADD"), config)
    assert outcome.code == 0
    assert outcome.json["cniVersion"] == "1.1.0"
    assert recorder.calls[0].cni_version == "1.1.0"


# ---------------------------------------------------------------------------- env validation


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("ADD", "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"),
        ("CHECK", "CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH"),
        ("DEL", "CNI_CONTAINERID,CNI_IFNAME,CNI_PATH"),
        ("STATUS", "CNI_PATH"),
        ("GC", "CNI_PATH"),
    ],
)
def test_missing_env_is_code_4_listing_all(command: str, missing: str) -> None:
    recorder = Recorder()
    outcome = run(recorder.handlers(), {"CNI_COMMAND": command}, conf("1.1.0"))
    assert outcome.code == 1
    assert outcome.json == {
        "cniVersion": "1.1.0",
        "code": 4,
        "msg": f"required env variables [{missing}] missing",
    }
    assert recorder.calls == []


@pytest.mark.parametrize("command", ["DEL", "STATUS", "GC"])
def test_commands_run_with_only_their_required_env(command: str) -> None:
    recorder = Recorder()
    env = {"CNI_COMMAND": command, **{name: ADD_ENV[name] for name in REQUIRED_ENV[command]}}
    outcome = run(recorder.handlers(), env, conf("1.1.0"))
    assert outcome.code == 0, outcome.stdout
    assert outcome.stdout == ""
    assert recorder.calls[0].netns == ""


def test_no_command_is_code_4() -> None:
    outcome = run(Recorder().handlers(), {}, conf())
    assert outcome.code == 1
    assert outcome.json["code"] == 4
    assert "CNI_COMMAND" in outcome.json["msg"]


def test_unknown_command_is_code_4() -> None:
    outcome = run(Recorder().handlers(), env_for("GET"), conf())
    assert outcome.json["code"] == 4
    assert outcome.json["msg"] == "unknown CNI_COMMAND: GET"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CNI_CONTAINERID": "-bad"}, "invalid characters in CNI_CONTAINERID"),
        ({"CNI_CONTAINERID": "a b"}, "invalid characters in CNI_CONTAINERID"),
        ({"CNI_IFNAME": "averyveryverylongname"}, "too long"),
        ({"CNI_IFNAME": ".."}, "is . or .."),
        ({"CNI_IFNAME": "eth/0"}, "contains / or :"),
        ({"CNI_IFNAME": "eth 0"}, "contains / or :"),
    ],
)
def test_bad_container_id_or_ifname(overrides: dict[str, str], message: str) -> None:
    outcome = run(Recorder().handlers(), env_for("ADD", **overrides), conf())
    assert outcome.json["code"] == 4
    assert message in outcome.json["msg"]


# ------------------------------------------------------------------------------- stdin config


@pytest.mark.parametrize("stdin", [b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'"x"'])
def test_undecodable_config_is_code_6(stdin: bytes) -> None:
    recorder = Recorder()
    outcome = run(recorder.handlers(), env_for("ADD"), stdin)
    assert outcome.code == 1
    assert outcome.json["code"] == 6
    assert outcome.json["msg"] == "failed to decode the network configuration"
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cniVersion": "1.0.0"}, "missing network name"),
        ({"cniVersion": "1.0.0", "name": ""}, "missing network name"),
        ({"cniVersion": "1.0.0", "name": "my net"}, "invalid characters found in network name"),
    ],
)
def test_bad_network_name_is_code_7(config: dict[str, Any], message: str) -> None:
    outcome = run(Recorder().handlers(), env_for("ADD"), config)
    assert outcome.json["code"] == 7
    assert outcome.json["msg"] == message
    # NB: the config's version was readable, so the error is written in it.
    assert outcome.json["cniVersion"] == "1.0.0"


# ------------------------------------------------------------------------ version negotiation


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", "2.0.0", None])
def test_unsupported_config_version_is_code_1(version: str | None) -> None:
    config = conf() if version is None else conf(version)
    if version is None:
        del config["cniVersion"]
    outcome = run(Recorder().handlers(), env_for("ADD"), config)
    assert outcome.code == 1
    assert outcome.json["code"] == 1
    assert outcome.json["msg"] == "incompatible CNI versions"
    assert f'config is "{version or "0.1.0"}"' in outcome.json["details"]
    assert outcome.json["cniVersion"] == "1.1.0"


def test_malformed_version_is_code_6() -> None:
    outcome = run(Recorder().handlers(), env_for("ADD"), conf("1.0"))
    assert outcome.json["code"] == 6
    assert "invalid CNI version '1.0'" in outcome.json["msg"]


@pytest.mark.parametrize(
    ("command", "too_old", "old_enough"),
    [("CHECK", "0.3.1", "0.4.0"), ("STATUS", "1.0.0", "1.1.0"), ("GC", "1.0.0", "1.1.0")],
)
def test_version_floors_per_command(command: str, too_old: str, old_enough: str) -> None:
    recorder = Recorder()
    outcome = run(recorder.handlers(), env_for(command), conf(too_old))
    assert outcome.code == 1
    assert outcome.json == {
        "cniVersion": too_old,
        "code": 1,
        "msg": f"config version does not allow {command}",
    }
    assert recorder.calls == []
    assert run(recorder.handlers(), env_for(command), conf(old_enough)).code == 0
    assert [c.command for c in recorder.calls] == [command]


# ----------------------------------------------------------------------------------- VERSION


@pytest.mark.parametrize(
    ("stdin", "answered_in"),
    [
        (b"", "1.1.0"),
        (b'{"cniVersion": "0.4.0"}', "0.4.0"),
        (b'{"cniVersion": "0.3.1"}', "0.3.1"),
        (b'{"cniVersion": "0.2.0"}', "1.1.0"),
        (b"garbage", "1.1.0"),
    ],
)
def test_version(stdin: bytes, answered_in: str) -> None:
    recorder = Recorder()
    outcome = run(recorder.handlers(), {"CNI_COMMAND": "VERSION"}, stdin)
    assert outcome.code == 0
    assert outcome.json == {
        "cniVersion": answered_in,
        "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    }
    assert recorder.calls == []


def test_version_honours_a_plugins_own_supported_list() -> None:
    handlers = Handlers(add=Recorder(), delete=Recorder(), supported_versions=("0.3.1", "0.4.0"))
    outcome = run(handlers, {"CNI_COMMAND": "VERSION"})
    assert outcome.json == {"cniVersion": "0.4.0", "supportedVersions": ["0.3.1", "0.4.0"]}
    assert run(handlers, env_for("ADD"), conf("1.0.0")).json["code"] == 1


# ---------------------------------------------------------------------------- handler errors


def test_cni_error_from_a_handler_is_printed_as_is() -> None:
    recorder = Recorder(raises=CniError(ErrorCode.TRY_AGAIN_LATER, "pool busy", "retry"))
    outcome = run(recorder.handlers(), env_for("ADD"), conf("0.4.0"))
    assert outcome.code == 1
    assert outcome.json == {
        "cniVersion": "0.4.0",
        "code": 11,
        "msg": "pool busy",
        "details": "retry",
    }


def test_unexpected_exception_is_code_999_without_traceback_on_stdout() -> None:
    recorder = Recorder(raises=KeyError("spec"))
    outcome = run(recorder.handlers(), env_for("ADD"), conf())
    assert outcome.code == 1
    assert outcome.json["code"] == 999
    assert outcome.json["msg"] == "unexpected KeyError: 'spec'"
    assert "Traceback" not in outcome.stdout
    assert "Traceback" in outcome.stderr
    assert len(outcome.stdout.splitlines()) == 1


@pytest.mark.parametrize("command", ["CHECK", "STATUS", "GC"])
def test_absent_optional_handlers_succeed(command: str) -> None:
    handlers = Handlers(add=Recorder(), delete=Recorder())
    outcome = run(handlers, env_for(command), conf("1.1.0"))
    assert (outcome.code, outcome.stdout) == (0, "")


@pytest.mark.parametrize("command", ["DEL", "CHECK", "STATUS", "GC"])
def test_non_add_commands_print_nothing_on_success(command: str) -> None:
    recorder = Recorder()
    outcome = run(recorder.handlers(), env_for(command), conf("1.1.0"))
    assert (outcome.code, outcome.stdout) == (0, "")
    assert recorder.calls[0].command == command
