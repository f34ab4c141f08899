"""``python -m integration.demo [up|down]``: run the demo (``make demo``) or clean up after an
interrupted one (``make demo-down``). Exit status 0 means every check passed (``up``) or
nothing is left behind (``down``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from integration.demo import steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integration.demo",
        description="DANM's multi-domain Service discovery demo on this machine (needs root).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="up",
        choices=("up", "down"),
        help="up: run the demo and tear it down (default); down: remove what a run left behind",
    )
    args = parser.parse_args(argv)
    if args.command == "down":
        return 0 if steps.down() else 1
    return steps.up()


if __name__ == "__main__":
    sys.exit(main())
