"""Entry point of the ``webhook`` console script: serve admission reviews, or make certificates.

``webhook --tls-cert-file F --tls-private-key-file F [--bind-address A] [--port P]
[--kubeconfig K]`` serves; without ``--kubeconfig`` the in-cluster service account is used.
The original's flag names (``--tls-cert-bundle``, ``--bind-port``) are accepted as aliases.
``--processes N`` forks N serving processes that share the listening socket; the parent only
passes signals on and stops them all if one dies. A DanmNet CREATE costs about 0.3 ms of CPU
(half of it TLS and HTTP), so one process answers roughly 3,000 reviews/s on one core; more
processes only pay off when the Pod has more than one core to spare.

``webhook certs --service S --namespace N --out DIR [--manifest M]`` issues a CA and a serving
certificate (see ``webhook.certs``) and fills the manifest's ``caBundle``.

This module only composes: it parses flags, builds the API adapter and the server, and turns
failures into an exit status and one readable line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any, NoReturn

from common.cli import build_parser

if TYPE_CHECKING:
    from webhook.app import ServeConfig

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

DESCRIPTION = "Validating and mutating admission webhook for every DANM API."
CERTS_DESCRIPTION = (
    "Issue a CA and a serving certificate for the webhook Service, write them as PEM files and "
    "fill the caBundle of a webhook configuration manifest."
)


def _serve_parser() -> argparse.ArgumentParser:
    parser = build_parser("webhook", DESCRIPTION)
    parser.epilog = "Run 'webhook certs --help' for the certificate tool."
    parser.add_argument("--bind-address", default="", help="address to listen on (default: all)")
    parser.add_argument(
        "--port", "--bind-port", type=int, default=8443, help="HTTPS port (default: 8443)"
    )
    parser.add_argument(
        "--tls-cert-file",
        "--tls-cert-bundle",
        required=True,
        help="PEM certificate chain (serving certificate first); reloaded when it changes",
    )
    parser.add_argument(
        "--tls-private-key-file", required=True, help="PEM private key of the certificate"
    )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster service account)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=None, help="largest AdmissionReview accepted"
    )
    parser.add_argument(
        "--cert-reload-interval",
        type=float,
        default=None,
        help="seconds between checks of the certificate files (default: 2)",
    )
    parser.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        help="serving processes sharing the listening socket, each with its own event loop "
        "(default: 1; more only helps with more than one core to spare)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _certs_parser() -> argparse.ArgumentParser:
    parser = build_parser("webhook certs", CERTS_DESCRIPTION)
    parser.add_argument("--service", default="danm-webhook-svc", help="Service name")
    parser.add_argument("--namespace", default="kube-system", help="Service namespace")
    parser.add_argument("--out", required=True, type=Path, help="directory for the PEM files")
    parser.add_argument(
        "--dns", action="append", default=[], help="extra DNS name for the certificate"
    )
    parser.add_argument(
        "--ip", action="append", default=[], help="extra IP address for the certificate"
    )
    parser.add_argument(
        "--manifest", type=Path, default=None, help="webhook configuration whose caBundle to fill"
    )
    parser.add_argument(
        "--manifest-out",
        type=Path,
        default=None,
        help="where the filled manifest goes (default: OUT/<manifest file name>)",
    )
    parser.add_argument(
        "--secret-name", default="danm-webhook-certs", help="name of the Secret written to OUT"
    )
    parser.add_argument("--valid-days", type=int, default=825, help="certificate lifetime")
    return parser


def _run_certs(argv: Sequence[str]) -> int:
    from webhook import certs

    args = _certs_parser().parse_args(argv)
    try:
        issued = certs.issue(
            [*certs.service_dns_names(args.service, args.namespace), *args.dns],
            args.ip,
            valid_days=args.valid_days,
        )
        paths = certs.write_certs(issued, args.out)
        secret = args.out / certs.SECRET_FILE
        secret.write_text(
            certs.secret_manifest(issued, name=args.secret_name, namespace=args.namespace)
        )
        secret.chmod(0o600)
        written = [*paths.values(), secret]
        if args.manifest is not None:
            target = args.manifest_out or args.out / args.manifest.name
            target.write_text(certs.fill_ca_bundle(args.manifest.read_text(), issued.ca_bundle))
            written.append(target)
    except (certs.CertError, OSError) as error:
        print(f"webhook certs: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _run_server(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from webhook.app import ServeConfig, bind_listener

    config = ServeConfig(
        bind_address=args.bind_address,
        port=args.port,
        cert_file=args.tls_cert_file,
        key_file=args.tls_private_key_file,
    )
    if args.max_body_bytes is not None:
        config = ServeConfig(**{**config.__dict__, "max_body_bytes": args.max_body_bytes})
    if args.cert_reload_interval is not None:
        config = ServeConfig(**{**config.__dict__, "reload_interval_s": args.cert_reload_interval})
    if args.processes == 1:
        return _serve_process(config, args.kubeconfig, None)
    try:
        listener = bind_listener(config.bind_address, config.port)
    except OSError as error:
        print(f"webhook: cannot serve: {error}", file=sys.stderr)
        return 1
    with listener:
        return _supervise(args.processes, lambda: _serve_process(config, args.kubeconfig, listener))


def _serve_process(config: ServeConfig, kubeconfig: str | None, listener: socket | None) -> int:
    """One serving process: its own API client, event loop and thread pool."""
    import asyncio
    import gc
    import ssl

    from common.io.kube import KubeError, KubernetesApi
    from webhook.admission import Reviewer
    from webhook.app import serve
    from webhook.store import KubeStore

    try:
        api = KubernetesApi.connect(kubeconfig)
    except KubeError as error:
        print(f"webhook: {error}", file=sys.stderr)
        return 1

    async def main() -> None:
        # NB: everything imported so far lives for the whole process; freezing it keeps the
        # cyclic GC from rescanning it on every full collection (fewer latency spikes).
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, Reviewer(KubeStore(api)), stop, on_ready=_announce, listener=listener)

    try:
        asyncio.run(main())
    except (OSError, ssl.SSLError) as error:
        print(f"webhook: cannot serve: {error}", file=sys.stderr)
        return 1
    finally:
        api.close()
    return 0


def _supervise(processes: int, serve_one: Callable[[], int]) -> int:
    """Fork ``processes`` copies of ``serve_one`` and wait for them; the webhook's exit status.

    SIGTERM/SIGINT are passed on to every process. If one exits on its own, the others are
    stopped and the webhook exits non-zero, so that Kubernetes restarts the Pod: a half-sized
    webhook that looks healthy is worse than a restart.
    """
    stopping = False
    children: set[int] = set()

    def stop_all(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # NB: handlers before forking, so that a signal in between is not lost; children reset them.
    previous = {signum: signal.signal(signum, stop_all) for signum in _STOP_SIGNALS}
    status = 0
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(processes):
            try:
                pid = os.fork()
            except OSError as error:
                print(f"webhook: cannot start a serving process: {error}", file=sys.stderr)
                stop_all(signal.SIGTERM, None)
                status = 1
                break
            if pid == 0:
                _run_child(serve_one, previous)
            children.add(pid)
            if stopping:
                # NB: the stop came between fork() and add(): this child missed it.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        while children:
            pid, wait_status = os.wait()
            children.discard(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                print(
                    f"webhook: serving process {pid} exited with status {code}; "
                    "stopping the others",
                    file=sys.stderr,
                )
                stop_all(signal.SIGTERM, None)
                status = 1
            elif code not in (0, -signal.SIGTERM, -signal.SIGINT):
                # NB: a process still starting when the stop came dies of the signal itself
                # (its own handlers are not installed yet): that is the stop we asked for.
                status = 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def _run_child(serve_one: Callable[[], int], handlers: Mapping[signal.Signals, Any]) -> NoReturn:
    code = 1
    try:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        code = serve_one()
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # NB: never return into the parent's stack (pytest's, in tests) from a forked child.
        os._exit(code)


def _announce(host: str, port: int) -> None:
    # NB: printed whatever the log level: scripts and tests started with --port 0 read it.
    # NB: one write for the whole line: print() writes the text and the newline separately, so
    # with PYTHONUNBUFFERED two serving processes could interleave their announcements.
    sys.stderr.write(f"webhook: listening on https://{host}:{port}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["certs"]:
        return _run_certs(arguments[1:])
    return _run_server(arguments)


if __name__ == "__main__":
    sys.exit(main())
