"""Kernel-module facts read straight from ELF files, so the guest needs neither depmod nor kmod.

The initramfs insmods a handful of ``.ko`` files. ``insmod`` resolves nothing, so the modules must
be loaded in dependency order; each module names its dependencies in the ``depends=`` entry of
its ``.modinfo`` ELF section. The same reader answers whether a binary is statically linked (no
``PT_INTERP`` program header), which is what makes busybox usable as the initramfs shell.

Everything here is pure: bytes in, plain data out.
"""

from __future__ import annotations

import graphlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_PT_INTERP = 3


class KmodError(Exception):
    """A module file is unreadable, not an ELF64 object, or a dependency is missing."""


@dataclass(frozen=True)
class ModuleFile:
    """One ``.ko`` file: its module name (underscores) and the modules it depends on."""

    name: str
    path: Path
    depends: tuple[str, ...]


def module_name(filename: str) -> str:
    """``9pnet_virtio.ko`` → ``9pnet_virtio``; the kernel treats ``-`` and ``_`` alike."""
    stem = filename.split(".ko", 1)[0]
    return stem.replace("-", "_")


def _check_elf64_le(data: bytes, what: str) -> None:
    if len(data) < 64 or data[:4] != _ELF_MAGIC:
        raise KmodError(f"{what}: not an ELF file")
    if data[4] != _ELFCLASS64 or data[5] != _ELFDATA2LSB:
        raise KmodError(f"{what}: not a little-endian ELF64 file")


def elf_section(data: bytes, wanted: str, *, what: str = "ELF file") -> bytes | None:
    """The raw bytes of the section called ``wanted``, or None if the file has no such section."""
    _check_elf64_le(data, what)
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shoff == 0 or shnum == 0 or shstrndx >= shnum:
        return None

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        if base + 0x28 > len(data):
            raise KmodError(f"{what}: section header {index} lies outside the file")
        (name_offset,) = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name_offset, offset, size

    _, names_offset, names_size = header(shstrndx)
    names = data[names_offset : names_offset + names_size]
    for index in range(shnum):
        name_offset, offset, size = header(index)
        end = names.find(b"\0", name_offset)
        if names[name_offset:end].decode("ascii", "replace") == wanted:
            return data[offset : offset + size]
    return None


def modinfo(data: bytes, *, what: str = "module") -> dict[str, str]:
    """The ``key=value`` entries of a module's ``.modinfo`` section (last one wins per key)."""
    section = elf_section(data, ".modinfo", what=what)
    if section is None:
        raise KmodError(f"{what}: no .modinfo section; is this a kernel module?")
    entries: dict[str, str] = {}
    for raw in section.split(b"\0"):
        key, sep, value = raw.decode("utf-8", "replace").partition("=")
        if sep:
            entries[key] = value
    return entries


def depends_of(data: bytes, *, what: str = "module") -> tuple[str, ...]:
    """The module names listed in ``depends=`` (empty when the module depends on nothing)."""
    listed = modinfo(data, what=what).get("depends", "")
    return tuple(module_name(name) for name in listed.split(",") if name)


def is_static_executable(data: bytes, *, what: str = "executable") -> bool:
    """True when the ELF file asks for no program interpreter, i.e. it is statically linked."""
    _check_elf64_le(data, what)
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        base = phoff + index * phentsize
        if base + 4 > len(data):
            raise KmodError(f"{what}: program header {index} lies outside the file")
        (p_type,) = struct.unpack_from("<I", data, base)
        if p_type == _PT_INTERP:
            return False
    return True


def index_module_tree(modules_root: Path) -> dict[str, Path]:
    """Map module name → ``.ko`` path for every module under ``lib/modules/<abi>/kernel``."""
    found: dict[str, Path] = {}
    for path in sorted(modules_root.rglob("*.ko")):
        found[module_name(path.name)] = path
    return found


def load_order(
    wanted: Iterable[str],
    depends: Mapping[str, tuple[str, ...]],
    *,
    builtin: frozenset[str] = frozenset(),
) -> list[str]:
    """Modules to insmod, dependencies first, for ``wanted`` and everything they pull in.

    ``depends`` maps each known module to its dependencies; ``builtin`` modules are part of the
    kernel image and are left out. A module that is neither known nor built in is an error.
    """
    graph: dict[str, tuple[str, ...]] = {}
    pending = [module_name(name) for name in wanted]
    while pending:
        name = pending.pop()
        if name in graph or name in builtin:
            continue
        if name not in depends:
            raise KmodError(f"kernel module {name!r} is neither a .ko file nor built in")
        graph[name] = tuple(dep for dep in depends[name] if dep not in builtin)
        pending.extend(graph[name])
    # NB: static_order() follows insertion order; sorting makes the insmod order reproducible.
    sorter = graphlib.TopologicalSorter(
        {name: tuple(sorted(graph[name])) for name in sorted(graph)}
    )
    return list(sorter.static_order())


def resolve_modules(
    wanted: Iterable[str], modules_root: Path, *, builtin: frozenset[str] = frozenset()
) -> list[ModuleFile]:
    """Read ``.modinfo`` of the needed files under ``modules_root`` and order them for insmod."""
    tree = index_module_tree(modules_root)
    depends: dict[str, tuple[str, ...]] = {}
    pending = [module_name(name) for name in wanted]
    while pending:
        name = pending.pop()
        if name in depends or name in builtin or name not in tree:
            continue
        path = tree[name]
        depends[name] = depends_of(path.read_bytes(), what=str(path))
        pending.extend(depends[name])
    order = load_order(wanted, depends, builtin=builtin)
    return [ModuleFile(name=name, path=tree[name], depends=depends[name]) for name in order]
