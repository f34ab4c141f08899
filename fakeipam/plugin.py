"""The whole ``fakeipam`` plugin on top of the CNI skeleton (see ``fakeipam.cli`` for what it does).

Kept apart from ``fakeipam.cli`` so that the common, well-formed ADD can be answered by
``fakeipam.lean`` without importing the skeleton at all; everything else comes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from common.cni.skel import CmdArgs, Handlers, dispatch
from common.cni.types import CniError, ErrorCode, IPConfig, Result


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
