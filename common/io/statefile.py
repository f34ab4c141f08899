"""Small state files on the node, written so that a crash never leaves a half-written one.

The CNI records what it is about to create before creating it (``danm.state``), and DEL/GC trust
those records when the API server cannot help. A torn or empty record after a power cut would
lose exactly the information DEL needs, so a write goes to a temporary file in the same
directory, is ``fsync``-ed, renamed over the target (atomic on POSIX) and the directory is
``fsync``-ed so the rename itself survives. Readers therefore see the old or the new content,
never a mix. Files are created ``0600``: records hold delegate configs, which may carry secrets.

Only bytes in, bytes out; the format belongs to the caller. Errors are ``StateFileError`` with
the path, never a bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_TMP_PREFIX = ".tmp-"


class StateFileError(Exception):
    """A state file or its directory could not be read, written or removed."""


def _checked_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        raise StateFileError(f"invalid state file name {name!r}: expected a plain file name")
    if name.startswith(_TMP_PREFIX):
        raise StateFileError(f"invalid state file name {name!r}: {_TMP_PREFIX}* is reserved")
    return name


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(directory: str | Path, name: str, data: bytes) -> Path:
    """Replace ``directory/name`` with ``data`` atomically and durably; creates ``directory``."""
    folder = Path(directory)
    target = folder / _checked_name(name)
    tmp = folder / f"{_TMP_PREFIX}{name}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        _fsync_directory(folder)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise StateFileError(f"cannot write state file {target}: {error}") from error
    return target


def read(directory: str | Path, name: str) -> bytes | None:
    """The content of ``directory/name``, or None if it does not exist."""
    target = Path(directory) / _checked_name(name)
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateFileError(f"cannot read state file {target}: {error}") from error


def remove(directory: str | Path, name: str) -> bool:
    """Delete ``directory/name``; False if it was already gone."""
    folder = Path(directory)
    target = folder / _checked_name(name)
    try:
        target.unlink()
        _fsync_directory(folder)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise StateFileError(f"cannot remove state file {target}: {error}") from error
    return True


def list_names(directory: str | Path, suffix: str = "") -> list[str]:
    """Names of the state files in ``directory`` ending in ``suffix``, sorted; [] if none.

    Temporary files of interrupted writes are not listed.
    """
    folder = Path(directory)
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise StateFileError(f"cannot list state directory {folder}: {error}") from error
    return sorted(
        entry.name
        for entry in entries
        if entry.name.endswith(suffix) and not entry.name.startswith(_TMP_PREFIX)
    )
