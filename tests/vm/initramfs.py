"""The guest's initramfs, written in pure Python: a newc cpio archive and the /init script.

The kernel unpacks a "newc" cpio archive into its root tmpfs and runs ``/init``. Ours holds only
a static busybox (the shell and the mount/insmod/chroot tools), the kernel modules in load order
and the init script below. The script mounts the host's root read-only over virtio-9p, puts a
tmpfs overlay on top so tests may write anywhere, chroots into it and runs one job in the host's
working directory, so the repository's ``.venv`` works unchanged. The job's exit status is printed
on the console behind a per-run token, which the host reads; then the guest powers off.

Rendering is pure (strings and bytes in, bytes out) so it is unit-tested without QEMU.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

# NB: the two 9p mount tags are shared with the QEMU command line in tests/vm/guest.py.
HOST_ROOT_TAG = "hostroot"
RESULTS_TAG = "results"
# NB: a status the job cannot produce on its own (shells cap at 255), for "init itself failed".
INIT_FAILED_STATUS = 999
GUEST_ENV_FLAG = "DANM_TEST_IN_GUEST"

_NEWC_MAGIC = b"070701"
_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000


@dataclass(frozen=True)
class CpioEntry:
    """One archive member. ``mode`` carries the file type bits (directory, file or symlink)."""

    path: str
    mode: int
    data: bytes = b""


def directory(path: str) -> CpioEntry:
    return CpioEntry(path=path, mode=_S_IFDIR | 0o755)


def regular_file(path: str, data: bytes, *, executable: bool = False) -> CpioEntry:
    return CpioEntry(path=path, mode=_S_IFREG | (0o755 if executable else 0o644), data=data)


def symlink(path: str, target: str) -> CpioEntry:
    return CpioEntry(path=path, mode=_S_IFLNK | 0o777, data=target.encode())


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _newc_member(ino: int, entry: CpioEntry) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    nlink = 2 if entry.mode & _S_IFDIR == _S_IFDIR else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, 0, 0, len(name), 0)
    header = _NEWC_MAGIC + b"".join(b"%08X" % field for field in fields)
    return header + name + _pad4(len(header) + len(name)) + entry.data + _pad4(len(entry.data))


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """A complete newc ("070701") cpio archive with its ``TRAILER!!!`` member."""
    members = [_newc_member(ino, entry) for ino, entry in enumerate(entries, start=1)]
    members.append(_newc_member(0, CpioEntry(path="TRAILER!!!", mode=0)))
    return b"".join(members)


def parse_newc(archive: bytes) -> list[CpioEntry]:
    """Read back what ``newc_archive`` wrote (for tests; stops at the trailer)."""
    entries: list[CpioEntry] = []
    offset = 0
    while True:
        if archive[offset : offset + 6] != _NEWC_MAGIC:
            raise ValueError(f"no newc header at offset {offset}")
        fields = [int(archive[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = archive[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        data = archive[data_start : data_start + filesize]
        entries.append(CpioEntry(path=name, mode=mode, data=data))
        offset = data_start + filesize + (-filesize % 4)


def exit_marker(token: str) -> str:
    """The console line prefix that carries the job's exit status, e.g. ``DANM-VM-EXIT-ab12=0``."""
    return f"DANM-VM-EXIT-{token}="


def parse_exit_status(console: str, token: str) -> int | None:
    """The status after the last exit marker on the console, or None if the job never finished."""
    marker = exit_marker(token)
    status: int | None = None
    for line in console.splitlines():
        _, found, rest = line.strip().partition(marker)
        if found and rest.strip().isdigit():
            status = int(rest.strip())
    return status


@dataclass(frozen=True)
class GuestJob:
    """What the guest runs: a command, in a directory, with exactly this environment."""

    command: Sequence[str]
    cwd: PurePosixPath
    env: Mapping[str, str]
    results_dir: PurePosixPath
    token: str


def render_job_script(job: GuestJob) -> str:
    """The shell script run inside the chroot: a clean environment, the cwd, then exec."""
    if not job.command:
        raise ValueError("the guest command must not be empty")
    lines = ["set -e"]
    for key, value in sorted(job.env.items()):
        if not key.isidentifier():
            raise ValueError(f"environment variable name {key!r} is not a valid shell name")
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append(f"cd {shlex.quote(str(job.cwd))}")
    lines.append("set +e")
    lines.append("exec " + shlex.join(job.command))
    return "\n".join(lines) + "\n"


def render_init_script(
    job: GuestJob, modules: Sequence[str], parameters: Mapping[str, str] | None = None
) -> str:
    """``/init``: load modules, build the overlay root, run the job, print the marker, power off.

    ``modules`` are file names in load order; ``parameters`` maps a file name to its insmod
    arguments.
    """
    parameters = parameters or {}
    root = "/mnt/root"
    results = shlex.quote(root + str(job.results_dir))
    marker = exit_marker(job.token)
    insmods = "\n".join(
        f"insmod /lib/modules/{shlex.quote(name)} {parameters.get(name, '')}".rstrip()
        + f' || fail "insmod {name}"'
        for name in modules
    )
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() {{
    echo "DANM-VM: init failed: $1"
    echo "{marker}{INIT_FAILED_STATUS}"
    poweroff -f
}}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
{insmods}
mkdir -p /mnt/lower /mnt/rw {root}
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 \\
    {HOST_ROOT_TAG} /mnt/lower || fail "mount host root"
mount -t tmpfs -o size=512m tmpfs /mnt/rw || fail "mount overlay tmpfs"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work \\
    {root} || fail "mount overlay"
mount -t proc proc {root}/proc || fail "mount proc"
mount -t sysfs sysfs {root}/sys || fail "mount sys"
mount -t devtmpfs devtmpfs {root}/dev || fail "mount dev"
mkdir -p {root}/dev/pts {root}/dev/shm
mount -t devpts devpts {root}/dev/pts
mount -t tmpfs tmpfs {root}/dev/shm
# NB: no tmpfs over /tmp: the overlay already makes it writable, and the checkout under test
# (CI clones into /tmp) must stay visible at the same path.
mount -t tmpfs tmpfs {root}/run || fail "mount run"
mkdir -p {root}/run/netns {root}/run/danm-vm {results}
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 \\
    {RESULTS_TAG} {results} || fail "mount results"
cp /job.sh {root}/run/danm-vm/
hostname danm-vm
ip link set lo up
echo "DANM-VM: job starts at $(cut -d' ' -f1 /proc/uptime) s of guest uptime"
# NB: the host's own env and sh, not busybox: Debian's static busybox prefers its applets over
# PATH, so under its shell `ip` would be busybox's cut-down ip, not iproute2.
chroot {root} /usr/bin/env -i /bin/sh /run/danm-vm/job.sh
status=$?
sync
echo "DANM-VM: job ended at $(cut -d' ' -f1 /proc/uptime) s of guest uptime"
echo "{marker}$status"
poweroff -f
"""


def build_initramfs(
    *,
    busybox: bytes,
    modules: Sequence[tuple[str, bytes]],
    job: GuestJob,
    module_parameters: Mapping[str, str] | None = None,
) -> bytes:
    """The whole archive: busybox, ``modules`` as (file name, bytes) in load order, init, job."""
    entries = [directory(name) for name in ("bin", "dev", "proc", "sys", "mnt", "lib")]
    entries.append(directory("lib/modules"))
    entries.append(regular_file("bin/busybox", busybox, executable=True))
    entries.append(symlink("bin/sh", "busybox"))
    entries.extend(regular_file(f"lib/modules/{name}", data) for name, data in modules)
    init = render_init_script(job, [name for name, _ in modules], module_parameters)
    entries.append(regular_file("init", init.encode(), executable=True))
    entries.append(regular_file("job.sh", render_job_script(job).encode()))
    return newc_archive(entries)
