"""Entry point of the ``webhook`` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli import build_parser, report_not_implemented

DESCRIPTION = "Validating and mutating admission webhook for every DANM API."


def main(argv: Sequence[str] | None = None) -> int:
    build_parser("webhook", DESCRIPTION).parse_args(argv)
    return report_not_implemented("webhook", 5)


if __name__ == "__main__":
    sys.exit(main())
