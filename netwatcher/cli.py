"""Entry point of the ``netwatcher`` console script: flags, logging, health, signals.

The work itself is ``netwatcher.controller.Netwatcher``; this module only turns flags into its
settings, connects to the API (a kubeconfig, or the in-cluster service account when none is
given) and runs it until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from common.cli import build_parser

DESCRIPTION = (
    "Keeps VLAN and VxLAN host interfaces in line with DanmNet, "
    "TenantNetwork and ClusterNetwork objects."
)
EXIT_CONFIG_ERROR = 2

log = logging.getLogger("netwatcher")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser("netwatcher", DESCRIPTION)
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file; without it the in-cluster service account is used",
    )
    parser.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME") or socket.gethostname(),
        help="this node's name, reported as the source of Events (default: $NODE_NAME, "
        "else the host name)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=_positive,
        default=300.0,
        help="full reconcile at least this often, repairing hand-made drift (default: 300)",
    )
    parser.add_argument(
        "--health-port",
        type=_port,
        default=None,
        help="serve /healthz and /readyz on this port (0 picks a free one; default: off)",
    )
    parser.add_argument("--health-address", default="0.0.0.0", help="address of the health server")
    parser.add_argument(
        "--netns",
        default=None,
        help="manage the links of this network namespace (path or 'ip netns' name) instead of "
        "the process's own; for tests and nested set-ups",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--log-format", default="json", choices=["json", "text"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    from common.io.health import HealthServer
    from common.io.kube import KubeError, KubernetesApi
    from common.logs import configure_logging
    from netwatcher.controller import Netwatcher, Settings

    configure_logging("netwatcher", level=args.log_level, fmt=args.log_format)
    try:
        api = KubernetesApi.connect(args.kubeconfig)
    except KubeError as error:
        print(f"netwatcher: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    settings = Settings(node_name=args.node_name, netns=args.netns, resync_s=args.resync_seconds)
    watcher = Netwatcher(api, settings)

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    health: HealthServer | None = None
    if args.health_port is not None:
        health = HealthServer(
            args.health_port,
            bind_address=args.health_address,
            live=watcher.liveness,
            ready=watcher.readiness,
        )
        health.start()
    log.info(
        "netwatcher starting",
        extra={
            "node": settings.node_name,
            "netns": settings.netns or "(own)",
            "resync_seconds": settings.resync_s,
        },
    )
    try:
        watcher.run(stop)
    finally:
        if health is not None:
            health.stop()
        api.close()
    log.info("netwatcher stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
