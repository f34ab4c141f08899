"""Running another CNI plugin (a DANM delegate, or a plugin of a delegate's chain) as a process.

Why it exists: the ``danm`` meta-plugin hands most interfaces to other CNI binaries (macvlan,
sriov, bridge, whatever a static config names). Doing that right is a small protocol of its own
(libcni's ``pkg/invoke``): find the binary in ``CNI_PATH``, give it exactly the CNI environment
for this call (not DANM's whole environment, which would leak e.g. ``CNI_CONF_DIR`` or proxies
into it), feed the config on stdin, bound it in time, and turn its stdout into either a result or
the plugin's own CNI error. Callers depend on the :class:`PluginExec` protocol so that unit tests
use a recording fake; :class:`SubprocessExec` is the real one.

Error vocabulary (all ``PluginExecError``, carrying ``.plugin`` and ``.command``)::

    PluginExecError
    ├── PluginNotFound    no executable regular file of that name in any CNI_PATH directory
    ├── PluginTimeout     the plugin did not finish before the caller's deadline (it is killed)
    └── PluginFailed      exit status != 0: ``.code``/``.msg``/``.details`` from the plugin's
                          CNI error JSON on stdout, or code 999 with its output when it printed
                          none; ``.stderr`` keeps the tail of what it wrote there

A zero exit with empty stdout is a success without result (DEL, CHECK, GC, STATUS; the spec also
allows it for an IPAM-less ADD of an old plugin). A zero exit with stdout that is not a JSON
object is a ``PluginFailed`` (code 6): a result nobody can read must not pass as success.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: How much of a plugin's stderr/stdout is kept in error messages.
OUTPUT_TAIL_CHARS = 2000
#: libcni's "internal error" code, used when a failed plugin printed no CNI error.
UNKNOWN_FAILURE_CODE = 999
DECODING_FAILURE_CODE = 6


@dataclass(frozen=True, slots=True)
class PluginRequest:
    """The CNI environment of one plugin call (empty strings are not passed on)."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: tuple[str, ...] = ()

    def environment(self, search_path: str) -> dict[str, str]:
        """Exactly the variables a CNI plugin gets, plus ``PATH`` (plugins exec helpers)."""
        env = {"CNI_COMMAND": self.command, "CNI_PATH": ":".join(self.path)}
        for key, value in (
            ("CNI_CONTAINERID", self.container_id),
            ("CNI_NETNS", self.netns),
            ("CNI_IFNAME", self.ifname),
            ("CNI_ARGS", self.args),
        ):
            if value:
                env[key] = value
        if search_path:
            env["PATH"] = search_path
        return env


class PluginExecError(Exception):
    """A plugin could not be run, or ran and failed."""

    def __init__(self, plugin: str, command: str, message: str) -> None:
        self.plugin = plugin
        self.command = command
        super().__init__(message)


class PluginNotFound(PluginExecError):
    pass


class PluginTimeout(PluginExecError):
    pass


class PluginFailed(PluginExecError):
    """The plugin exited non-zero; ``code``/``msg``/``details`` are its CNI error."""

    def __init__(
        self, plugin: str, command: str, *, code: int, msg: str, details: str = "", stderr: str = ""
    ) -> None:
        self.code = code
        self.msg = msg
        self.details = details
        self.stderr = stderr
        text = f"{plugin} {command} failed with code {code}: {msg}"
        if details:
            text += f" ({details})"
        super().__init__(plugin, command, text)


class PluginExec(Protocol):
    """Run one CNI plugin binary; the answer is its stdout JSON object, or None if empty."""

    def run(
        self, plugin: str, request: PluginRequest, config: bytes, *, timeout_s: float
    ) -> dict[str, Any] | None: ...


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_TAIL_CHARS else "..." + text[-OUTPUT_TAIL_CHARS:]


def find_plugin(plugin: str, path: Sequence[str]) -> str:
    """The executable ``plugin`` in the first ``path`` directory holding one, or PluginNotFound."""
    if not plugin or "/" in plugin or plugin in (".", ".."):
        raise PluginNotFound(
            plugin, "", f"invalid CNI plugin name {plugin!r}: expected a file name"
        )
    for directory in path:
        if not directory:
            continue
        candidate = os.path.join(directory, plugin)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    searched = ", ".join(p for p in path if p) or "(CNI_PATH is empty)"
    raise PluginNotFound(plugin, "", f'failed to find plugin "{plugin}" in path [{searched}]')


def parse_plugin_error(
    plugin: str, command: str, returncode: int, stdout: bytes, stderr: bytes
) -> PluginFailed:
    """The ``PluginFailed`` for a plugin that exited ``returncode`` != 0 with this output."""
    err_text = _tail(stderr.decode("utf-8", "replace"))
    out_text = stdout.decode("utf-8", "replace")
    try:
        body = json.loads(out_text) if out_text.strip() else None
    except ValueError:
        body = None
    if isinstance(body, Mapping) and "msg" in body:
        code = body.get("code")
        return PluginFailed(
            plugin,
            command,
            code=code if isinstance(code, int) and not isinstance(code, bool) else 999,
            msg=str(body.get("msg")),
            details=str(body.get("details") or ""),
            stderr=err_text,
        )
    shown = _tail(out_text) or err_text or "no output"
    return PluginFailed(
        plugin,
        command,
        code=UNKNOWN_FAILURE_CODE,
        msg=f"exited with status {returncode} without a CNI error",
        details=shown,
        stderr=err_text,
    )


def parse_plugin_output(plugin: str, command: str, stdout: bytes) -> dict[str, Any] | None:
    """The JSON object a successful plugin printed, or None when it printed nothing."""
    text = stdout.decode("utf-8", "replace")
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError as error:
        raise PluginFailed(
            plugin,
            command,
            code=DECODING_FAILURE_CODE,
            msg="plugin succeeded but printed output that is not JSON",
            details=f"{error}: {_tail(text)}",
        ) from None
    if not isinstance(body, dict):
        raise PluginFailed(
            plugin,
            command,
            code=DECODING_FAILURE_CODE,
            msg="plugin succeeded but printed JSON that is not an object",
            details=_tail(text),
        )
    return body


class SubprocessExec:
    """``PluginExec`` by ``subprocess``; ``search_path`` becomes the plugin's ``PATH``."""

    def __init__(self, search_path: str | None = None) -> None:
        self.search_path = (
            os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            if search_path is None
            else search_path
        )

    def run(
        self, plugin: str, request: PluginRequest, config: bytes, *, timeout_s: float
    ) -> dict[str, Any] | None:
        try:
            binary = find_plugin(plugin, request.path)
        except PluginNotFound as missing:
            raise PluginNotFound(plugin, request.command, str(missing)) from None
        if timeout_s <= 0:
            raise PluginTimeout(
                plugin, request.command, f"no time left to run {plugin} {request.command}"
            )
        try:
            completed = subprocess.run(
                [binary],
                input=config,
                env=request.environment(self.search_path),
                capture_output=True,
                timeout=timeout_s,
                check=False,
                cwd="/",
            )
        except subprocess.TimeoutExpired:
            # NB: subprocess.run has already killed and reaped the plugin.
            raise PluginTimeout(
                plugin,
                request.command,
                f"{plugin} {request.command} did not finish within {timeout_s:.1f} s and was "
                "killed",
            ) from None
        except OSError as error:
            raise PluginFailed(
                plugin,
                request.command,
                code=UNKNOWN_FAILURE_CODE,
                msg=f"cannot execute {binary}",
                details=str(error),
            ) from error
        if completed.returncode != 0:
            raise parse_plugin_error(
                plugin, request.command, completed.returncode, completed.stdout, completed.stderr
            )
        return parse_plugin_output(plugin, request.command, completed.stdout)


_check: PluginExec = SubprocessExec(search_path="")
