"""Entry point of the ``svcwatcher`` console script: flags, logging, leader election, health.

Only composition happens here: build the API client, the health server and (with
``--leader-elect``, the default) a Lease-based elector, and run a ``SvcWatcher`` while this
replica leads. Losing the lease stops the controller and exits with status 1, as kube's own
controllers do, so the container restarts as a clean candidate instead of a half-stopped leader.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from common.cli import build_parser
from common.io.health import HealthServer
from common.io.kube import KubeApi, KubeError, KubernetesApi
from common.io.leader import LeaderElector
from common.logs import configure_logging
from svcwatcher.controller import Options, SvcWatcher
from svcwatcher.events import EventRecorder

DESCRIPTION = (
    "Makes Kubernetes Services, Endpoints and EndpointSlices work on "
    "any DANM-managed Pod interface."
)

log = logging.getLogger("svcwatcher")


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def build_arg_parser() -> argparse.ArgumentParser:
    parser = build_parser("svcwatcher", DESCRIPTION)
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file to use (default: the in-cluster service account)",
    )
    parser.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run only while holding the Lease, so several replicas are safe (default: on)",
    )
    parser.add_argument("--lease-namespace", default="kube-system", help="(default: %(default)s)")
    parser.add_argument("--lease-name", default="danm-svcwatcher", help="(default: %(default)s)")
    parser.add_argument(
        "--identity",
        help="this replica's name in the Lease (default: <hostname>_<random suffix>)",
    )
    parser.add_argument(
        "--lease-duration-seconds", type=_positive(float), default=15.0, metavar="S"
    )
    parser.add_argument(
        "--renew-deadline-seconds", type=_positive(float), default=10.0, metavar="S"
    )
    parser.add_argument("--retry-period-seconds", type=_positive(float), default=2.0, metavar="S")
    parser.add_argument(
        "--health-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="port of /healthz and /readyz; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument("--health-bind-address", default="0.0.0.0", metavar="ADDR")
    parser.add_argument(
        "--resync-seconds",
        type=_positive(float),
        default=60.0,
        metavar="S",
        help="re-check every Service this often even without events (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=2,
        help="Services reconciled in parallel (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="json", choices=["json", "text"])
    return parser


@dataclass
class _Current:
    """The controller of the current leadership term, for the health endpoints."""

    watcher: SvcWatcher | None = None
    leading: bool = False


def _run_controller(
    api: KubeApi,
    args: argparse.Namespace,
    identity: str,
    current: _Current,
    *stops: threading.Event,
) -> None:
    """Run a SvcWatcher until any of ``stops`` is set."""
    watcher = SvcWatcher(
        api,
        options=Options(resync_s=args.resync_seconds, workers=args.workers),
        recorder=EventRecorder(api, instance=identity),
    )
    current.watcher = watcher
    watcher.start()
    log.info("controller started; filling caches", extra={"identity": identity})
    try:
        while not any(stop.wait(0.2) for stop in stops):
            pass
    finally:
        watcher.stop()
        log.info("controller stopped", extra={"identity": identity})


def run(api: KubeApi, args: argparse.Namespace, stop: threading.Event) -> int:
    """Serve health, elect, reconcile; returns the exit status."""
    identity = args.identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    current = _Current()

    def live() -> str | None:
        return current.watcher.alive_reason() if current.watcher else None

    def ready() -> str | None:
        # NB: a standby replica is ready: it is doing its job (waiting), and a rollout must not
        # stall on it.
        if not current.leading or current.watcher is None or current.watcher.synced:
            return None
        return "caches are not synced yet"

    health = HealthServer(
        args.health_port, bind_address=args.health_bind_address, live=live, ready=ready
    )
    health.start()
    try:
        if not args.leader_elect:
            current.leading = True
            _run_controller(api, args, identity, current, stop)
            return 0
        elector = LeaderElector(
            api,
            namespace=args.lease_namespace,
            name=args.lease_name,
            identity=identity,
            lease_duration_s=args.lease_duration_seconds,
            renew_deadline_s=args.renew_deadline_seconds,
            retry_period_s=args.retry_period_seconds,
        )
        finished = threading.Event()

        def lead(lost: threading.Event) -> None:
            current.leading = True
            log.info(
                "became the leader (Lease %s/%s)",
                args.lease_namespace,
                args.lease_name,
                extra={"identity": identity},
            )
            try:
                _run_controller(api, args, identity, current, stop, lost)
            finally:
                current.leading = False
                finished.set()

        log.info(
            "campaigning for Lease %s/%s",
            args.lease_namespace,
            args.lease_name,
            extra={"identity": identity},
        )
        elector.run(lead, stop)
        if current.watcher is not None:
            # NB: the elector returns once renewal failed; let our controller wind down first.
            finished.wait(30)
        if stop.is_set():
            return 0
        log.error("lost the Lease; exiting so that a fresh replica can campaign")
        return 1
    finally:
        health.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    configure_logging("svcwatcher", level=args.log_level, fmt=args.log_format)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        api = KubernetesApi.connect(args.kubeconfig)
    except KubeError as error:
        log.error("%s", error)
        return 1
    try:
        return run(api, args, stop)
    except OSError as error:
        # NB: e.g. the health port is taken; say so instead of dumping a traceback.
        log.error("cannot start: %s", error)
        return 1
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
