"""Entry point of the ``danm`` console script: the composition root of the CNI meta-plugin.

Run by a container runtime, ``danm`` gets no arguments and ``CNI_COMMAND`` in its environment;
this module is then the only code that binds ``os.environ`` and the standard streams to
``common.cni.skel.dispatch``. Run by a person, it answers ``--help``/``--version`` like the other
binaries. Imports stay minimal on purpose: the runtime starts this process once per pod and
network, so nothing heavy (``kubernetes``, ``pyroute2``) may be imported at module level.

What this build serves (the metaplugin's ADD/DEL logic lands in a later issue):

* VERSION: complete.
* ADD, CHECK, GC: CNI error 100 "danm: <CMD> is not implemented in this build yet".
* STATUS: CNI error 50 ("plugin not available"), the spec's own word for "cannot serve ADD",
  which is exactly this build's state; containerd polls STATUS and reports the network not ready.
* DEL: success, with a warning on stderr. The spec asks DEL to succeed when there is nothing to
  release, and this build's ADD never creates or reserves anything, so there is nothing to
  release; failing DEL would only wedge pod teardown (pods stuck Terminating, multus#669/#677)
  without protecting any resource. The exception is a node where a *working* DANM build created
  pods and was then replaced by this one: those pods' resources are not freed by this build,
  which the warning says.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from common.cni.skel import CmdArgs, Handler, Handlers, dispatch
from common.cni.types import CniError, ErrorCode, Result

DESCRIPTION = (
    "DANM CNI meta-plugin. Container runtimes run it with CNI_COMMAND and the network "
    "configuration on stdin; by hand it only answers --help and --version."
)
USAGE_HINT = (
    "danm is a CNI plugin: a container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, "
    "STATUS, GC or VERSION) in the environment and the network config on stdin.\n"
    "Try: CNI_COMMAND=VERSION danm </dev/null    or    danm --help\n"
)


def _not_implemented(args: CmdArgs) -> Result | None:
    raise CniError(
        ErrorCode.PLUGIN_ERROR, f"danm: {args.command} is not implemented in this build yet"
    )


def _status(_args: CmdArgs) -> Result | None:
    raise CniError(
        ErrorCode.PLUGIN_NOT_AVAILABLE,
        "danm: this build cannot serve ADD yet",
        "the DANM meta-plugin's ADD is not implemented in this build",
    )


def _make_delete(stderr: IO[str]) -> Handler:
    def _delete(args: CmdArgs) -> Result | None:
        stderr.write(
            f"danm: DEL for container {args.container_id} is a no-op in this build: it never "
            "creates interfaces or reserves addresses, so it has nothing to release\n"
        )
        return None

    return _delete


def handlers(stderr: IO[str]) -> Handlers:
    """The verbs this build serves (see the module docstring for why each answers as it does)."""
    return Handlers(
        add=_not_implemented,
        delete=_make_delete(stderr),
        check=_not_implemented,
        status=_status,
        gc=_not_implemented,
    )


def run_cni(environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Serve one CNI call over the given process boundary; return the exit status."""
    return dispatch(handlers(stderr), environ=environ, stdin=stdin, stdout=stdout, stderr=stderr)


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
        build_parser("danm", DESCRIPTION).parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    sys.stderr.write(USAGE_HINT)
    return 2


if __name__ == "__main__":
    sys.exit(main())
