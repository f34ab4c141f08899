"""Argument-parser scaffolding shared by the five console scripts.

Every binary answers ``--help`` and ``--version`` the same way; keeping the parser factory here
means the version string and the program description are never spelled twice.
"""

from __future__ import annotations

import argparse

from common.version import __version__


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """Return a parser for ``prog`` that already knows ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} (danm-py) {__version__}")
    return parser


def report_not_implemented(prog: str, issue: int) -> int:
    """Say plainly that a component has not landed yet, instead of pretending to run.

    Returns the exit status (2, as for a usage error) so callers can ``return`` it.
    """
    import sys

    print(
        f"{prog}: this component is not implemented in this build yet (tracked in issue #{issue})",
        file=sys.stderr,
    )
    return 2
