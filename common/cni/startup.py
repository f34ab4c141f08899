"""How the CNI executables start and end: their shared ``main``, and the start-up and exit
shortcuts of their bundled form (``common.cni.bundle``).

:func:`plugin_main` is the whole ``main()`` of ``danm`` and ``fakeipam``: the one place that binds
the environment and the standard streams to a plugin's ``run_cni``, or answers a person's
``--help``/``--version``. It lives here because every bundle imports this module first anyway, so
sharing it costs the CNI path no extra import.

Why the shortcuts exist: a bundled ``danm`` lives for one CNI call, so two fixed costs of CPython
weigh as much as the call's own work, and both can be cut without changing what the process does:

* **dataclass methods.** ``@dataclass`` writes ``__init__``/``__repr__``/``__eq__``/... as
  source text and compiles it with ``exec`` on every import: ~20 ms per process for the ~60
  dataclasses of an ADD. The bundle builder imports every bundled module once, records each
  source text ``dataclasses`` compiles and stores the compiled code in the archive
  (:func:`record_dataclass_code`). At start-up :func:`use_dataclass_code` gives ``dataclasses``
  a module-level ``exec`` that runs the stored code for a text it knows and compiles anything
  else exactly as the builtin would. The key is the full source text, so a different Python or
  different classes can only miss the cache, never get a wrong function; the stored code is
  used only by an interpreter with the bytecode magic number it was compiled for.
* **interpreter teardown.** Freeing every module and object at exit costs ~10 ms.
  :func:`exit_status` ends the process with ``os._exit`` once the streams and log handlers are
  flushed, but only when the normal exit has nothing else to do: no thread other than the main
  one is alive and no ``atexit`` callback is registered beyond ``logging``'s own (which it then
  runs). Otherwise it returns the status for an ordinary ``sys.exit``.
"""

from __future__ import annotations

import io
import marshal
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import CodeType
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeAlias

#: Name of the stored code inside the archive.
DATACLASS_CODE = "dataclass_code.bin"
if TYPE_CHECKING:  # NB: a runtime alias would build typing generics on every CNI call
    #: Serves one CNI call: ``(environ, stdin, stdout, stderr) -> exit status``.
    CniRunner: TypeAlias = Callable[[Mapping[str, str], IO[bytes], IO[str], IO[str]], int]
# NB: what CPython's dataclasses.py is compiled with: no __future__ flags of ours may leak in.
_COMPILE_FLAGS = 0


class ArchiveLoader(Protocol):
    """What ``__main__.__loader__`` of a zipapp offers (``zipimport.zipimporter``)."""

    def get_data(self, pathname: str) -> bytes: ...


def _magic() -> bytes:
    from importlib.util import MAGIC_NUMBER  # NB: frozen with the interpreter, already loaded

    return MAGIC_NUMBER


def _compile(source: str) -> CodeType:
    code: CodeType = compile(source, "<string>", "exec", _COMPILE_FLAGS, dont_inherit=True)
    return code


def record_dataclass_code(modules: Iterable[str]) -> bytes:
    """Import ``modules`` and return the stored-code blob of every dataclass method they build.

    Run by the builder in a fresh interpreter of the target version with the staged bundle on
    ``sys.path``; nothing else may have imported those modules before.
    """
    import dataclasses

    texts: dict[str, CodeType] = {}
    builtin_exec: Callable[..., Any] = exec

    def recording_exec(source: Any, *args: Any) -> Any:
        if isinstance(source, str):
            texts[source] = _compile(source)
        return builtin_exec(source, *args)

    dataclasses.exec = recording_exec  # type: ignore[attr-defined]
    try:
        for module in modules:
            __import__(module)
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
    return _magic() + marshal.dumps(texts)


def use_dataclass_code(loader: ArchiveLoader) -> bool:
    """Let ``dataclasses`` reuse the code stored in the archive; False if there is none to use."""
    try:
        blob = loader.get_data(DATACLASS_CODE)
    except OSError:
        return False
    magic = _magic()
    if not blob.startswith(magic):
        return False  # NB: another bytecode version: compile as usual
    stored: dict[str, CodeType] = marshal.loads(blob[len(magic) :])
    import dataclasses

    builtin_exec: Callable[..., Any] = exec

    def stored_exec(source: Any, *args: Any) -> Any:
        code = stored.get(source) if isinstance(source, str) else None
        return builtin_exec(source if code is None else code, *args)

    dataclasses.exec = stored_exec  # type: ignore[attr-defined]
    return True


def exit_status(status: int) -> int:
    """End the process now with ``status`` if teardown has nothing to do; else return it."""
    import atexit

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return status
    logging = sys.modules.get("logging")
    registered: Callable[[], int] | None = getattr(atexit, "_ncallbacks", None)
    if registered is None or registered() > (0 if logging is None else 1):
        return status  # NB: someone else's cleanup (a temp dir finaliser, ...) must run
    try:
        if logging is not None:
            logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:
        return status  # NB: let the ordinary exit report it as it always would
    os._exit(status)


def plugin_main(
    name: str,
    description: str,
    usage_hint: str,
    run_cni: CniRunner,
    argv: Sequence[str] | None = None,
) -> int:
    """The ``main()`` of the CNI executable ``name``; returns its exit status.

    With no arguments and ``CNI_COMMAND`` set, a runtime is calling: ``run_cni`` serves the call
    over this process's environment and standard streams. Otherwise a person is: ``--help`` and
    ``--version`` are answered (argparse is imported only then), anything else gets
    ``usage_hint`` on stderr and status 2.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        if os.environ.get("CNI_COMMAND"):
            # NB: a terminal on stdin means a person typed CNI_COMMAND=...; never block on it.
            stdin: IO[bytes] = io.BytesIO() if sys.stdin.isatty() else sys.stdin.buffer
            return run_cni(os.environ, stdin, sys.stdout, sys.stderr)
        sys.stderr.write(usage_hint)
        return 2
    from common.cli import build_parser  # NB: argparse is only needed on the human path

    try:
        build_parser(name, description).parse_args(arguments)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    sys.stderr.write(usage_hint)
    return 2
