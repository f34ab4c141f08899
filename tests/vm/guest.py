"""Run one command inside a throw-away QEMU guest with Debian's stock kernel.

The host kernel lacks ipvlan, 802.1q VLAN and dummy links and cannot load modules, so the tests
that need them run in a guest (see /work/shared/notes/kernel-vm.md for what was measured):

* the kernel is Debian's generic ``linux-image-<abi>-amd64``, fetched with ``apt-get download``
  and unpacked with ``dpkg-deb -x``; only ``vmlinuz`` and the needed ``.ko`` files are kept in
  the cache (``<repo>/.cache/vm/``), so later runs need neither apt nor the network;
* the guest boots under TCG (the host's /dev/kvm is a nested device that hangs QEMU) from a tiny
  initramfs (tests/vm/initramfs.py), sees the host's ``/`` read-only over virtio-9p with a tmpfs
  overlay, and runs the command in the host's working directory;
* a second, writable 9p share is mounted at the same path as the host's ``results_dir``, so the
  command can name it (e.g. ``--junitxml``) exactly as the host sees it;
* a watchdog kills QEMU on timeout, on any exception (also KeyboardInterrupt) and, through
  ``PR_SET_PDEATHSIG``, when the process that started it dies; the initramfs is a memfd, so no
  temporary file is left behind either.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.vm import initramfs, kmod

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "vm"
QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/bin/busybox")
APT_PACKAGES = ("qemu-system-x86", "busybox-static")
KERNEL_META_PACKAGE = "linux-image-amd64"

BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
NET_MODULES = ("ipvlan", "8021q", "dummy", "macvlan", "vxlan", "veth", "bridge")
GUEST_MODULES = BOOT_MODULES + NET_MODULES
# NB: dummy.ko otherwise creates dummy0 in the guest's root namespace, which no test asked for.
MODULE_PARAMETERS = {"dummy.ko": "numdummies=0"}

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet mitigations=off"


class GuestError(Exception):
    """The guest could not be prepared or started (missing tool, failed download, bad cache)."""


class GuestUnavailable(GuestError):
    """A host tool the guest needs is not installed; the message names the apt packages."""


@dataclass(frozen=True)
class GuestKernel:
    """A cached kernel image plus the modules to insmod, already in dependency order."""

    package: str
    vmlinuz: Path
    modules: tuple[Path, ...]


@dataclass(frozen=True)
class GuestResult:
    """What came back: the job's exit status (None if it never finished), the console text."""

    exit_status: int | None
    console_output: str
    results_dir: Path
    timed_out: bool
    duration_s: float


def missing_host_tools() -> list[str]:
    """Human-readable problems with the host tools; empty when the guest can be booted."""
    problems = []
    if shutil.which(QEMU) is None:
        problems.append(f"{QEMU} is not installed")
    if not BUSYBOX.is_file():
        problems.append(f"{BUSYBOX} is not installed")
    elif not kmod.is_static_executable(BUSYBOX.read_bytes(), what=str(BUSYBOX)):
        problems.append(
            f"{BUSYBOX} is dynamically linked (the busybox package, not busybox-static)"
        )
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed (a Debian host is needed)")
    return problems


def install_hint() -> str:
    return "apt-get install --no-install-recommends " + " ".join(APT_PACKAGES)


def _run_tool(argv: Sequence[str], *, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, check=False, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GuestError(f"`{' '.join(argv)}` could not run: {error}") from error
    if done.returncode != 0:
        raise GuestError(
            f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def parse_kernel_package(apt_cache_depends: str) -> str | None:
    """``linux-image-<abi>-amd64`` from ``apt-cache depends linux-image-amd64`` output."""
    for line in apt_cache_depends.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-") and name.endswith("-amd64"):
            return name.strip()
    return None


def resolve_kernel_package() -> str:
    """The exact kernel package; runs ``apt-get update`` once when the lists do not know it."""
    with contextlib.suppress(GuestError):
        found = parse_kernel_package(_run_tool(["apt-cache", "depends", KERNEL_META_PACKAGE]))
        if found:
            return found
    if os.geteuid() != 0:
        raise GuestError(
            f"apt-cache cannot resolve {KERNEL_META_PACKAGE}; run `apt-get update` as root"
        )
    _run_tool(["apt-get", "update", "-qq"])
    found = parse_kernel_package(_run_tool(["apt-cache", "depends", KERNEL_META_PACKAGE]))
    if not found:
        raise GuestError(f"apt-cache depends {KERNEL_META_PACKAGE} names no linux-image package")
    return found


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    # NB: two pytest runs (or xdist workers) may prepare the cache at once.
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _cache_key(package: str, modules: Sequence[str]) -> str:
    digest = hashlib.sha256(",".join(sorted(modules)).encode()).hexdigest()[:10]
    return f"{package}-{digest}"


def _load_cached(entry: Path, package: str) -> GuestKernel | None:
    manifest = entry / "manifest.json"
    if not manifest.is_file():
        return None
    listed = json.loads(manifest.read_text())
    kernel = GuestKernel(
        package=package,
        vmlinuz=entry / "vmlinuz",
        modules=tuple(entry / "modules" / name for name in listed["load_order"]),
    )
    if not kernel.vmlinuz.is_file() or not all(path.is_file() for path in kernel.modules):
        return None
    return kernel


def _unpack_kernel(package: str, modules: Sequence[str], entry: Path, scratch: Path) -> None:
    _run_tool(["apt-get", "download", "-q", package], cwd=scratch)
    debs = sorted(scratch.glob(f"{package}_*.deb"))
    if len(debs) != 1:
        raise GuestError(f"apt-get download {package} left {len(debs)} .deb files in {scratch}")
    unpacked = scratch / "root"
    _run_tool(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    trees = sorted((unpacked / "lib" / "modules").glob("*/kernel"))
    if len(images) != 1 or len(trees) != 1:
        raise GuestError(f"{debs[0].name} does not hold exactly one vmlinuz and one module tree")
    builtin_list = trees[0].parent / "modules.builtin"
    builtin = frozenset(
        kmod.module_name(Path(line).name)
        for line in (builtin_list.read_text().split() if builtin_list.is_file() else [])
    )
    ordered = kmod.resolve_modules(modules, trees[0], builtin=builtin)
    (entry / "modules").mkdir(parents=True)
    shutil.copyfile(images[0], entry / "vmlinuz")
    for module in ordered:
        shutil.copyfile(module.path, entry / "modules" / f"{module.name}.ko")
    manifest = {"package": package, "load_order": [f"{module.name}.ko" for module in ordered]}
    (entry / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _newest_cached(cache_dir: Path, modules: Sequence[str]) -> GuestKernel | None:
    suffix = _cache_key("", modules)
    for entry in sorted(cache_dir.glob(f"linux-image-*{suffix}"), reverse=True):
        cached = _load_cached(entry, entry.name.removesuffix(suffix))
        if cached is not None:
            return cached
    return None


def _fetch_into_cache(package: str, modules: Sequence[str], cache_dir: Path) -> Path:
    entry = cache_dir / _cache_key(package, modules)
    shutil.rmtree(entry, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="unpack-", dir=cache_dir) as scratch:
        staging = Path(scratch) / "entry"
        _unpack_kernel(package, modules, staging, Path(scratch))
        staging.rename(entry)
    return entry


def prepare_kernel(
    cache_dir: Path = DEFAULT_CACHE_DIR, *, modules: Sequence[str] = GUEST_MODULES
) -> GuestKernel:
    """The current Debian generic kernel and its modules, downloaded once and then cached.

    Only ``vmlinuz`` and the needed ``.ko`` files are kept (a few MB, not the 400 MB tree);
    cache entries for older kernel packages are removed. When apt cannot name the package
    (offline, no lists) an already cached kernel is used; when the download fails on stale
    lists, ``apt-get update`` runs once (as root) and the download is retried.
    """
    with _locked(cache_dir / ".lock"):
        try:
            package = resolve_kernel_package()
        except GuestError:
            fallback = _newest_cached(cache_dir, modules)
            if fallback is None:
                raise
            return fallback
        key = _cache_key(package, modules)
        cached = _load_cached(cache_dir / key, package)
        if cached is not None:
            return cached
        try:
            entry = _fetch_into_cache(package, modules, cache_dir)
        except GuestError:
            if os.geteuid() != 0:
                raise
            _run_tool(["apt-get", "update", "-qq"])
            package = resolve_kernel_package()
            key = _cache_key(package, modules)
            entry = _fetch_into_cache(package, modules, cache_dir)
        for stale in cache_dir.glob("linux-image-*"):
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
        loaded = _load_cached(entry, package)
    if loaded is None:
        raise GuestError(f"the kernel cache entry {entry} is incomplete right after writing it")
    return loaded


def qemu_command(*, kernel: GuestKernel, initrd: Path, results_dir: Path) -> list[str]:
    """The QEMU invocation: TCG, serial console on stdio, host root ro + results rw over 9p."""
    return [
        QEMU,
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-m",
        "1024",
        "-nographic",
        "-nodefaults",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        KERNEL_ARGS,
        "-fsdev",
        "local,id=hostroot,path=/,readonly=on,security_model=none,multidevs=remap",
        "-device",
        f"virtio-9p-pci,fsdev=hostroot,mount_tag={initramfs.HOST_ROOT_TAG}",
        "-fsdev",
        f"local,id=results,path={results_dir},security_model=none,multidevs=remap",
        "-device",
        f"virtio-9p-pci,fsdev=results,mount_tag={initramfs.RESULTS_TAG}",
    ]


def guest_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` on top of a minimal default, always flagged as running in the guest."""
    merged = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    merged.update(env)
    merged[initramfs.GUEST_ENV_FLAG] = "1"
    return merged


def _die_with_parent() -> None:
    # NB: runs in the child between fork and exec; SIGKILL qemu if its parent dies first.
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _drain(stream: int, sink: list[bytes], echo: bool) -> None:
    while chunk := os.read(stream, 65536):
        sink.append(chunk)
        if echo:
            sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_in_guest(
    command: Sequence[str],
    *,
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str],
    results_dir: Path,
    kernel: GuestKernel | None = None,
    echo_console: bool | None = None,
) -> GuestResult:
    """Boot a fresh guest, run ``command`` in ``cwd`` there and power off.

    ``results_dir`` (owned by the caller, must exist) is writable from the guest at the same
    path. ``env`` is the command's whole environment on top of PATH/HOME/LANG defaults, plus
    ``DANM_TEST_IN_GUEST=1``. QEMU is killed after ``timeout_s`` seconds and on any exception.
    Set ``DANM_VM_CONSOLE=1`` (or ``echo_console``) to copy the console to stderr live.
    """
    problems = missing_host_tools()
    if problems:
        raise GuestUnavailable("; ".join(problems) + f". Install: {install_hint()}")
    if not results_dir.is_dir():
        raise GuestError(f"results_dir {results_dir} does not exist")
    if echo_console is None:
        echo_console = os.environ.get("DANM_VM_CONSOLE") == "1"
    kernel = kernel or prepare_kernel()
    token = secrets.token_hex(8)
    job = initramfs.GuestJob(
        command=list(command),
        cwd=PurePosixPath(cwd.resolve()),
        env=guest_environment(env),
        results_dir=PurePosixPath(results_dir.resolve()),
        token=token,
    )
    image = initramfs.build_initramfs(
        busybox=BUSYBOX.read_bytes(),
        modules=[(path.name, path.read_bytes()) for path in kernel.modules],
        job=job,
        module_parameters=MODULE_PARAMETERS,
    )
    started = time.monotonic()
    # NB: the initramfs lives in an anonymous memory file handed to QEMU as /dev/fd/N, so there
    # is no scratch file to leak even if this process is SIGKILLed.
    initrd_fd = os.memfd_create("danm-vm-initramfs")
    console: list[bytes] = []
    timed_out = False
    try:
        os.write(initrd_fd, image)
        argv = qemu_command(
            kernel=kernel, initrd=Path(f"/dev/fd/{initrd_fd}"), results_dir=results_dir.resolve()
        )
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(initrd_fd,),
            start_new_session=True,
            preexec_fn=_die_with_parent,  # NB: prctl between fork and exec
        )
    finally:
        os.close(initrd_fd)
    assert process.stdout is not None
    reader = threading.Thread(
        target=_drain, args=(process.stdout.fileno(), console, echo_console), daemon=True
    )
    try:
        reader.start()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        _stop(process)
        reader.join(timeout=10)
        process.stdout.close()
    text = b"".join(console).decode("utf-8", "replace").replace("\r\n", "\n")
    if timed_out:
        text += f"\n[watchdog: killed QEMU after {timeout_s:.0f} s]\n"
    return GuestResult(
        exit_status=initramfs.parse_exit_status(text, token),
        console_output=text,
        results_dir=results_dir,
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.vm.guest CMD...``: run a command in the guest (debugging aid)."""
    command = list(argv if argv is not None else sys.argv[1:]) or ["true"]
    with tempfile.TemporaryDirectory(prefix="danm-vm-results-") as results:
        result = run_in_guest(
            command,
            cwd=Path.cwd(),
            timeout_s=600,
            env={"TERM": "dumb"},
            results_dir=Path(results),
            echo_console=True,
        )
    print(f"\nexit status {result.exit_status} after {result.duration_s:.1f} s", file=sys.stderr)
    return 1 if result.exit_status is None else min(result.exit_status, 255)


if __name__ == "__main__":
    raise SystemExit(main())
