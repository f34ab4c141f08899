"""Entry point of the ``netwatcher`` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli import build_parser, report_not_implemented

DESCRIPTION = (
    "Keeps VLAN and VxLAN host interfaces in line with DanmNet, "
    "TenantNetwork and ClusterNetwork objects."
)


def main(argv: Sequence[str] | None = None) -> int:
    build_parser("netwatcher", DESCRIPTION).parse_args(argv)
    return report_not_implemented("netwatcher", 6)


if __name__ == "__main__":
    sys.exit(main())
