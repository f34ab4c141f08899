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
