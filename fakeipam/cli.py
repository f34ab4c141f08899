"""Entry point of the ``fakeipam`` console script, and the whole plugin (it is that small).

DANM reserves addresses itself and then runs a delegate plugin (macvlan, sriov, a static conf)
whose ``ipam`` section it replaces with ``{"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.5/24",
"version": 4}, ...]}``. The delegate runs ``fakeipam``, which echoes those addresses back as an
IPAM result, so the delegate configures exactly what DANM chose (danm-behaviour.md §4.8).

Unlike the original, which spoke only CNI 0.3.1 (so static delegate confs of any other version
broke, §13.24), this one answers in whatever version the delegate's config asks for, 0.3.0 to
1.1.0. DEL has nothing to release (DANM owns the reservation); CHECK has nothing to verify beyond
the config being readable; STATUS is always ready; GC has no state to collect.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from common.cni.skel import CmdArgs, Handlers, dispatch
from common.cni.types import CniError, ErrorCode, IPConfig, Result

DESCRIPTION = (
    "DANM's pass-through CNI IPAM plugin: returns the addresses listed in the config's "
    "ipam.ips as the IPAM result. Run by CNI delegates, not by hand."
)
USAGE_HINT = (
    "fakeipam is a CNI IPAM plugin: a CNI plugin runs it with CNI_COMMAND in the environment "
    "and the network config on stdin.\n"
    "Try: CNI_COMMAND=VERSION fakeipam </dev/null    or    fakeipam --help\n"
)


def _parse_ip(entry: Any) -> IPConfig:
    import ipaddress  # NB: lazily, so VERSION calls never pay for it

    cidr = entry.get("ipcidr") if isinstance(entry, Mapping) else None
    if not isinstance(cidr, str) or "/" not in cidr:
        raise CniError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f"Unable to parse the given IpamConfig.IpCidr: {cidr if cidr is not None else entry}",
        )
    try:
        parsed = ipaddress.ip_interface(cidr)
    except ValueError as exc:
        raise CniError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f"Unable to parse the given IpamConfig.IpCidr: {cidr}",
            str(exc),
        ) from exc
    declared = entry.get("version")
    if declared is not None and str(declared) != str(parsed.version):
        raise CniError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f"ipam.ips entry {cidr} says version {declared} but is an IPv{parsed.version} address",
        )
    return IPConfig(address=cidr)


def requested_ips(config: Mapping[str, Any]) -> tuple[IPConfig, ...]:
    """The addresses the config's ``ipam.ips`` asks for, validated, in the given order."""
    ipam = config.get("ipam")
    if not isinstance(ipam, Mapping):
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "the network config has no ipam section")
    entries = ipam.get("ips") or []
    if not isinstance(entries, list):
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "ipam.ips must be a list")
    if not entries:
        raise CniError(ErrorCode.INVALID_NETWORK_CONFIG, "No IP was passed to fake IPAM")
    return tuple(_parse_ip(entry) for entry in entries)


def cmd_add(args: CmdArgs) -> Result:
    return Result(ips=requested_ips(args.config))


def cmd_del(_args: CmdArgs) -> None:
    # NB: DANM owns the reservation and frees it itself; there is nothing here to release.
    return None


def cmd_check(args: CmdArgs) -> None:
    # NB: no state of our own; the only thing that can be wrong is the config itself.
    requested_ips(args.config)


HANDLERS = Handlers(add=cmd_add, delete=cmd_del, check=cmd_check)


def run_cni(environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Serve one CNI call over the given process boundary; return the exit status."""
    return dispatch(HANDLERS, environ=environ, stdin=stdin, stdout=stdout, stderr=stderr)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        if os.environ.get("CNI_COMMAND"):
            # NB: a terminal on stdin means a person typed CNI_COMMAND=...; never block on it.
            stdin: IO[bytes] = io.BytesIO() if sys.stdin.isatty() else sys.stdin.buffer
            return run_cni(os.environ, stdin, sys.stdout, sys.stderr)
        sys.stderr.write(USAGE_HINT)
        return 2
    from common.cli import build_parser  # NB: argparse is only needed on the human path

    try:
        build_parser("fakeipam", DESCRIPTION).parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    sys.stderr.write(USAGE_HINT)
    return 2


if __name__ == "__main__":
    sys.exit(main())
