"""Entry point of the ``svcwatcher`` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli import build_parser, report_not_implemented

DESCRIPTION = (
    "Makes Kubernetes Services, Endpoints and EndpointSlices work on "
    "any DANM-managed Pod interface."
)


def main(argv: Sequence[str] | None = None) -> int:
    build_parser("svcwatcher", DESCRIPTION).parse_args(argv)
    return report_not_implemented("svcwatcher", 7)


if __name__ == "__main__":
    sys.exit(main())
