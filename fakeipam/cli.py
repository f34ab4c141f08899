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
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from common.cni.startup import plugin_main
from fakeipam.lean import answer_add, answer_del

DESCRIPTION = (
    "DANM's pass-through CNI IPAM plugin: returns the addresses listed in the config's "
    "ipam.ips as the IPAM result. Run by CNI delegates, not by hand."
)
USAGE_HINT = (
    "fakeipam is a CNI IPAM plugin: a CNI plugin runs it with CNI_COMMAND in the environment "
    "and the network config on stdin.\n"
    "Try: CNI_COMMAND=VERSION fakeipam </dev/null    or    fakeipam --help\n"
)


def run_cni(environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Serve one CNI call over the given process boundary; return the exit status.

    NB: a well-formed ADD or DEL is answered by ``fakeipam.lean`` (no skeleton import, the
    start-up cost every delegate call pays); anything else, errors included, by the full
    ``fakeipam.plugin``.
    """
    lean_answer = {"ADD": answer_add, "DEL": answer_del}.get(environ.get("CNI_COMMAND", ""))
    if lean_answer is not None:
        data = stdin.read()
        answer = lean_answer(environ, data)
        if answer is not None:
            if answer:
                stdout.write(answer)
                stdout.flush()
            return 0
        stdin = io.BytesIO(data)
    from fakeipam.plugin import run_cni as run_full_cni

    return run_full_cni(environ, stdin, stdout, stderr)


def main(argv: Sequence[str] | None = None) -> int:
    return plugin_main("fakeipam", DESCRIPTION, USAGE_HINT, run_cni, argv)


if __name__ == "__main__":
    sys.exit(main())
