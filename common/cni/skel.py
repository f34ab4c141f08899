"""The CNI execution protocol, with the process boundary as parameters.

``dispatch`` does what containernetworking/cni ``pkg/skel`` does for Go plugins: read
``CNI_COMMAND`` and friends, validate them per command, decode the stdin config, negotiate the
spec version, call the right handler and print either its result or a CNI error object. It never
touches ``os.environ`` or ``sys.std*`` itself: the caller passes them in, so tests drive every
verb with a dict and byte buffers, and only ``*/cli.py`` binds it to the real process.

Rules taken from the spec (1.1.0) and libcni's skel:

* required variables: ADD/CHECK need CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH; DEL the
  same minus CNI_NETNS (the namespace may be gone); STATUS and GC only CNI_PATH; VERSION nothing.
  A missing one is code 4, listing all that are missing.
* CHECK needs a config of version >= 0.4.0, STATUS and GC >= 1.1.0; below that it is code 1
  ("config version does not allow CHECK") before the handler is reached.
* a handler absent for CHECK/STATUS/GC means "nothing to check / always ready / nothing to
  collect" and succeeds, as a nil function does in libcni; ADD and DEL handlers are mandatory.
* any exception escaping a handler becomes code 999 on stdout; its traceback goes to stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeAlias

from common.cni.types import CniError, ErrorCode, Result
from common.cni.version import (
    CHECK_MIN_VERSION,
    GC_MIN_VERSION,
    LATEST_VERSION,
    STATUS_MIN_VERSION,
    SUPPORTED_VERSIONS,
    negotiate,
    parse_version,
    requested_version,
    version_at_least,
    version_document,
)

COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")

#: Environment variables each command cannot do without (libcni skel's table).
REQUIRED_ENV: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
    "VERSION": (),
}

_MIN_VERSION = {"CHECK": CHECK_MIN_VERSION, "STATUS": STATUS_MIN_VERSION, "GC": GC_MIN_VERSION}
# NB: the spec's character rule for container IDs and network names.
_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_MAX_IFNAME = 15


@dataclass(frozen=True, slots=True)
class CmdArgs:
    """Everything one CNI invocation carries, already validated."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: str
    """``CNI_ARGS`` as given; parse with ``common.cni.types.parse_cni_args``."""
    path: tuple[str, ...]
    stdin: bytes
    config: dict[str, Any]
    cni_version: str
    """The negotiated version: results and errors are written in it."""


Handler: TypeAlias = Callable[[CmdArgs], Result | None]


@dataclass(frozen=True, slots=True)
class Handlers:
    """One plugin's verbs. Only ADD returns a result; the others return None on success."""

    add: Handler
    delete: Handler
    check: Handler | None = None
    status: Handler | None = None
    gc: Handler | None = None
    supported_versions: tuple[str, ...] = SUPPORTED_VERSIONS

    def for_command(self, command: str) -> Handler | None:
        return {
            "ADD": self.add,
            "DEL": self.delete,
            "CHECK": self.check,
            "STATUS": self.status,
            "GC": self.gc,
        }[command]


def _validate_container_id(value: str) -> None:
    if not _ID_PATTERN.match(value):
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "invalid characters in CNI_CONTAINERID", value
        )


def _validate_ifname(value: str) -> None:
    problem = ""
    if len(value) > _MAX_IFNAME:
        problem = f"interface name is too long (at most {_MAX_IFNAME} characters)"
    elif value in (".", ".."):
        problem = "interface name is . or .."
    elif any(c in "/:" or c.isspace() for c in value):
        problem = "interface name contains / or : or whitespace"
    if problem:
        raise CniError(ErrorCode.INVALID_ENVIRONMENT_VARIABLES, problem, value)


def _read_environment(environ: Mapping[str, str]) -> str:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES, "required env variables [CNI_COMMAND] missing"
        )
    if command not in REQUIRED_ENV:
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
            f"unknown CNI_COMMAND: {command}",
            f"expected one of {', '.join(COMMANDS)}",
        )
    missing = [name for name in REQUIRED_ENV[command] if not environ.get(name)]
    if missing:
        raise CniError(
            ErrorCode.INVALID_ENVIRONMENT_VARIABLES,
            f"required env variables [{','.join(missing)}] missing",
        )
    if "CNI_CONTAINERID" in REQUIRED_ENV[command]:
        _validate_container_id(environ["CNI_CONTAINERID"])
    if "CNI_IFNAME" in REQUIRED_ENV[command]:
        _validate_ifname(environ["CNI_IFNAME"])
    return command


def _decode_config(data: bytes) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CniError(
            ErrorCode.DECODING_FAILURE, "failed to decode the network configuration", str(exc)
        ) from exc
    if not isinstance(config, dict):
        raise CniError(
            ErrorCode.DECODING_FAILURE,
            "failed to decode the network configuration",
            "it must be a JSON object",
        )
    return config


def _validate_network_name(config: Mapping[str, Any]) -> None:
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "missing network name")
    if not _ID_PATTERN.match(name):
        raise CniError(
            ErrorCode.INVALID_NETWORK_CONFIG, "invalid characters found in network name", name
        )


def _error_version(config: Mapping[str, Any] | None, supported: Sequence[str]) -> str:
    """Errors are written in the config's version when we speak it, else in our latest."""
    if config is not None:
        try:
            wanted = requested_version(config)
        except CniError:
            return LATEST_VERSION
        if wanted in supported:
            return wanted
    return max(supported, key=parse_version)


def _answer_version(handlers: Handlers, stdin: bytes) -> dict[str, Any]:
    # NB: stdin is optional for VERSION; a runtime that sends {"cniVersion": x} gets x back.
    requested: str | None = None
    try:
        probe = json.loads(stdin) if stdin.strip() else {}
    except (ValueError, UnicodeDecodeError):
        probe = {}
    if isinstance(probe, dict) and isinstance(probe.get("cniVersion"), str):
        requested = probe["cniVersion"]
    return version_document(requested, handlers.supported_versions)


def _call(
    handlers: Handlers,
    command: str,
    environ: Mapping[str, str],
    stdin: bytes,
    config: dict[str, Any],
) -> dict[str, Any] | None:
    """Check versions, run the handler, and return the JSON to print (if any)."""
    minimum = _MIN_VERSION.get(command)
    if minimum is not None and not version_at_least(requested_version(config), minimum):
        raise CniError(
            ErrorCode.INCOMPATIBLE_CNI_VERSION, f"config version does not allow {command}"
        )
    cni_version = negotiate(config, handlers.supported_versions)
    handler = handlers.for_command(command)
    if handler is None:
        return None
    cmd_args = CmdArgs(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=environ.get("CNI_ARGS", ""),
        path=tuple(p for p in environ.get("CNI_PATH", "").split(":") if p),
        stdin=stdin,
        config=config,
        cni_version=cni_version,
    )
    result = handler(cmd_args)
    return None if result is None else result.to_json(cni_version)


def dispatch(
    handlers: Handlers,
    *,
    environ: Mapping[str, str],
    stdin: IO[bytes],
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    """Serve one CNI invocation; return the process exit status (0 success, 1 error)."""
    config: dict[str, Any] | None = None
    output: dict[str, Any] | None
    try:
        command = _read_environment(environ)
        data = stdin.read()
        if command == "VERSION":
            output = _answer_version(handlers, data)
        else:
            config = _decode_config(data)
            _validate_network_name(config)
            output = _call(handlers, command, environ, data, config)
    except CniError as error:
        _write(stdout, error.to_json(_error_version(config, handlers.supported_versions)))
        return 1
    except Exception as exc:
        import traceback  # NB: lazily, so only the failure path pays for it

        traceback.print_exc(file=stderr)
        internal = CniError(
            ErrorCode.INTERNAL,
            f"unexpected {type(exc).__name__}: {exc}",
            "the plugin's stderr/log carries the traceback",
        )
        _write(stdout, internal.to_json(_error_version(config, handlers.supported_versions)))
        return 1
    if output is not None:
        _write(stdout, output)
    return 0


def _write(stdout: IO[str], body: Mapping[str, Any]) -> None:
    stdout.write(json.dumps(body) + "\n")
    stdout.flush()
