"""The composition root of the ``danm`` verbs: real adapters in, ``cmd_*`` called.

``danm.cli`` binds the process to ``common.cni.skel.dispatch`` and imports this module only when
a verb other than VERSION runs. Here each handler reads the DANM keys of the stdin config
(``danm.config``), sets up the log file, builds the adapters (``LeanKubeApi`` from the
``kubeconfig`` key, ``PyrouteNetlink``, ``SubprocessExec``, the ``NodeStore`` on ``stateDir``)
and calls the verb, the ``cmdAddFunc``/``cmdAdd(client, ...)`` split of whereabouts.

The API adapter is ``common.io.kube_lean.LeanKubeApi`` (standard library only) rather than the
official client: kubelet starts this process for every Pod, and ``import kubernetes`` alone cost
more than the rest of an ADD. It keeps one kept-alive TLS connection per parallel thread.

Log file: the config key ``logFile`` (default ``/var/log/danm.log``, append, ``0640``); when it
cannot be opened the log goes to stderr, which the runtime keeps, rather than failing the call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import IO, Any

from common.cni.skel import CmdArgs, Handlers
from common.cni.types import CniError, ErrorCode, Result
from common.io.cniexec import SubprocessExec
from common.io.devices import DeviceReadError, pf_name, read_checkpoint
from common.io.kube import KubeError
from common.io.kube_lean import LeanKubeApi
from common.io.netlink import PyrouteNetlink
from danm.add import AddRequest, NodeFiles, cmd_add, rebuild_delegate_for
from danm.config import DanmConfig, parse_config
from danm.delete import DelRequest, NodeStore, cmd_del

DEFAULT_LOG_FILE = "/var/log/danm.log"
KEY_LOG_FILE = "logFile"
#: DEL, STATUS and GC never wait longer than this for one API request.
SHORT_REQUEST_TIMEOUT_S = 10.0
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(message)s"

log = logging.getLogger("danm")


def setup_logging(config: Mapping[str, Any], stderr: IO[str]) -> None:
    """Send the ``danm`` logger to the configured file (or ``stderr`` if it cannot be opened)."""
    if log.handlers:
        return
    path = config.get(KEY_LOG_FILE, DEFAULT_LOG_FILE)
    handler: logging.Handler
    try:
        if not isinstance(path, str) or not path.startswith("/"):
            raise OSError(f"{KEY_LOG_FILE} must be an absolute path, got {path!r}")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        handler = logging.StreamHandler(os.fdopen(fd, "a", buffering=1))
    except OSError as error:
        handler = logging.StreamHandler(stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.warning("cannot open the log file (%s); logging to stderr", error)
        return
    handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _connect(settings: DanmConfig, request_timeout_s: float) -> LeanKubeApi:
    return LeanKubeApi.connect(settings.kubeconfig or None, request_timeout_s=request_timeout_s)


def _try_connect(settings: DanmConfig, request_timeout_s: float) -> tuple[LeanKubeApi | None, str]:
    try:
        return _connect(settings, request_timeout_s), ""
    except KubeError as error:
        return None, str(error)


def hostname() -> str:
    return os.uname().nodename


def _read_optional(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _pf_name(device_id: str) -> str:
    try:
        return pf_name(device_id)
    except DeviceReadError:
        return ""


def node_files() -> NodeFiles:
    return NodeFiles(read_file=_read_optional, read_checkpoint=read_checkpoint, pf_name=_pf_name)


class Verbs:
    """The handlers of one process; ``environ`` supplies ``CNI_CONF_DIR``."""

    def __init__(self, environ: Mapping[str, str], stderr: IO[str]) -> None:
        self.environ = environ
        self.stderr = stderr

    def _settings(self, args: CmdArgs) -> DanmConfig:
        setup_logging(args.config, self.stderr)
        return parse_config(args.config, self.environ)

    def add(self, args: CmdArgs) -> Result | None:

        settings = self._settings(args)
        try:
            api = _connect(settings, settings.delegate_timeout_s)
        except KubeError as error:
            raise CniError(
                ErrorCode.PLUGIN_ERROR, "danm cannot build its Kubernetes API client", str(error)
            ) from error
        request = AddRequest(
            container_id=args.container_id,
            netns=args.netns,
            ifname=args.ifname,
            cni_args=args.args,
            cni_path=args.path,
            cni_dir=settings.cni_dir,
            naming_scheme=settings.naming_scheme,
            timeout_s=settings.delegate_timeout_s,
            checkpoint_file=settings.checkpoint_file,
            pod_resources_socket=settings.pod_resources_socket,
            hostname=hostname(),
        )
        with api:
            return cmd_add(
                request,
                api=api,
                netlink=PyrouteNetlink(),
                exec_=SubprocessExec(),
                store=NodeStore(settings.state_dir),
                files=node_files(),
            )

    def delete(self, args: CmdArgs) -> Result | None:

        settings = self._settings(args)
        timeout = min(settings.delegate_timeout_s, SHORT_REQUEST_TIMEOUT_S * 3)
        api, problem = _try_connect(settings, SHORT_REQUEST_TIMEOUT_S)
        request = DelRequest(
            container_id=args.container_id,
            netns=args.netns,
            ifname=args.ifname,
            cni_args=args.args,
            cni_path=args.path,
        )
        try:
            cmd_del(
                request,
                api=api,
                netlink=PyrouteNetlink(),
                exec_=SubprocessExec(),
                store=NodeStore(settings.state_dir),
                timeout_s=timeout,
                rebuild_delegate=(
                    None
                    if api is None
                    else rebuild_delegate_for(api, settings.cni_dir, node_files())
                ),
                api_problem=problem,
            )
        finally:
            if api is not None:
                api.close()
        return None

    def check(self, args: CmdArgs) -> Result | None:
        from danm.check import CheckRequest, cmd_check  # NB: ADD, the hot path, never needs it

        settings = self._settings(args)
        prev = args.config.get("prevResult")
        try:
            api = _connect(settings, SHORT_REQUEST_TIMEOUT_S)
        except KubeError as error:
            raise CniError(
                ErrorCode.PLUGIN_ERROR, "danm cannot build its Kubernetes API client", str(error)
            ) from error
        with api:
            cmd_check(
                CheckRequest(
                    container_id=args.container_id,
                    netns=args.netns,
                    prev_result=prev if isinstance(prev, dict) else None,
                    cni_path=args.path,
                    cni_args=args.args,
                    timeout_s=settings.delegate_timeout_s,
                ),
                api=api,
                netlink=PyrouteNetlink(),
                store=NodeStore(settings.state_dir),
                exec_=SubprocessExec(),
            )
        return None

    def status(self, args: CmdArgs) -> Result | None:
        from danm.status import cmd_status

        settings = self._settings(args)
        api, problem = _try_connect(settings, SHORT_REQUEST_TIMEOUT_S)
        try:
            cmd_status(api=api, api_problem=problem, state_dir=settings.state_dir)
        finally:
            if api is not None:
                api.close()
        return None

    def gc(self, args: CmdArgs) -> Result | None:
        from danm.gc import GcRequest, cmd_gc, valid_attachments

        settings = self._settings(args)
        api, problem = _try_connect(settings, SHORT_REQUEST_TIMEOUT_S)
        if api is None:
            log.warning("GC without an API client: %s", problem)
        try:
            cmd_gc(
                GcRequest(
                    valid=valid_attachments(args.config),
                    cni_path=args.path,
                    hostname=hostname(),
                    timeout_s=min(settings.delegate_timeout_s, SHORT_REQUEST_TIMEOUT_S * 3),
                ),
                api=api,
                netlink=PyrouteNetlink(),
                exec_=SubprocessExec(),
                store=NodeStore(settings.state_dir),
            )
        finally:
            if api is not None:
                api.close()
        return None


def handlers(environ: Mapping[str, str], stderr: IO[str]) -> Handlers:
    """Every verb of the meta-plugin, served by :class:`Verbs`."""
    verbs = Verbs(environ, stderr)
    return Handlers(
        add=verbs.add,
        delete=verbs.delete,
        check=verbs.check,
        status=verbs.status,
        gc=verbs.gc,
    )
