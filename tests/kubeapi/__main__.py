"""``python -m tests.kubeapi --port PORT --kubeconfig PATH``: run the stand-in until signalled.

Prints ``ready <url>`` once serving so a parent process (a demo script, a test) can wait
for that line; SIGTERM and SIGINT shut it down cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from tests.kubeapi.credentials import create_credentials, write_kubeconfig
from tests.kubeapi.server import ServerConfig, start_server


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.kubeapi", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig to write")
    parser.add_argument("--workdir", type=Path, help="where certificates go (default: temp)")
    parser.add_argument("--persist", type=Path, help="JSON file to load and save the store")
    parser.add_argument("--event-history", type=int, default=1000)
    parser.add_argument("--bookmark-interval", type=float, default=1.0)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, workdir: Path) -> None:
    credentials = create_credentials(workdir)
    config = ServerConfig(
        credentials,
        persist_path=args.persist,
        event_history=args.event_history,
        bookmark_interval=args.bookmark_interval,
    )
    server = await start_server(config, host=args.host, port=args.port)
    write_kubeconfig(args.kubeconfig, server.url, credentials)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.workdir is not None:
        asyncio.run(serve(args, args.workdir))
        return 0
    with tempfile.TemporaryDirectory(prefix="kubeapi-") as temporary:
        asyncio.run(serve(args, Path(temporary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
