"""Entry point of the ``danm`` console script: the composition root of the CNI meta-plugin.

Run by a container runtime, ``danm`` gets no arguments and ``CNI_COMMAND`` in its environment;
``main`` (``common.cni.startup.plugin_main``, shared with ``fakeipam``) then hands
``os.environ`` and the standard streams to ``run_cni``, which hands them to
``common.cni.skel.dispatch``. Run by a person, it answers ``--help``/``--version`` like the other
binaries. Imports stay minimal on purpose: the runtime starts this process once per pod and
network, so nothing heavy (``kubernetes``, ``pyroute2``) may be imported at module level.

The verbs themselves live in ``danm.cni`` (composition) and ``danm.add``/``delete``/``check``/
``status``/``gc``; they are imported only when a verb other than VERSION runs, so VERSION stays
as cheap as starting Python.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import IO

from common.cni.skel import CmdArgs, Handler, Handlers, dispatch
from common.cni.startup import plugin_main
from common.cni.types import Result

DESCRIPTION = (
    "DANM CNI meta-plugin. Container runtimes run it with CNI_COMMAND and the network "
    "configuration on stdin; by hand it only answers --help and --version."
)
USAGE_HINT = (
    "danm is a CNI plugin: a container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, "
    "STATUS, GC or VERSION) in the environment and the network config on stdin.\n"
    "Try: CNI_COMMAND=VERSION danm </dev/null    or    danm --help\n"
)


def _lazy(verb: str, environ: Mapping[str, str], stderr: IO[str]) -> Handler:
    def handler(args: CmdArgs) -> Result | None:
        from danm.cni import Verbs  # NB: heavy imports only once a real verb runs

        method: Handler = getattr(Verbs(environ, stderr), verb)
        return method(args)

    return handler


def handlers(environ: Mapping[str, str], stderr: IO[str]) -> Handlers:
    """Every verb, each importing its implementation on first use."""
    return Handlers(
        add=_lazy("add", environ, stderr),
        delete=_lazy("delete", environ, stderr),
        check=_lazy("check", environ, stderr),
        status=_lazy("status", environ, stderr),
        gc=_lazy("gc", environ, stderr),
    )


def run_cni(environ: Mapping[str, str], stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    """Serve one CNI call over the given process boundary; return the exit status."""
    return dispatch(
        handlers(environ, stderr), environ=environ, stdin=stdin, stdout=stdout, stderr=stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    return plugin_main("danm", DESCRIPTION, USAGE_HINT, run_cni, argv)


if __name__ == "__main__":
    sys.exit(main())
