"""A private Docker daemon for the image tier, and the stand-in base images it builds on.

Why private: the tier must not depend on, or disturb, a Docker the machine may already run. The
daemon gets its own data root, exec root, socket and config, no bridge and no iptables rules
(``--bridge none``): builds and containers use ``--network host`` or ``none``, or join a
network namespace the test created, so nothing but loopback and test namespaces carries
traffic. ``stop()`` ends the daemon and its containerd, unmounts what they left and deletes
the directory.

Why stand-in bases: the Dockerfiles start ``FROM python:3.11-slim`` and ``busybox:1.36`` from
Docker Hub, which this machine cannot reach (only PyPI and Debian's archive). They take the base
as a build argument, so the tier builds Debian 12's own Python 3.11 (debootstrap from the
Debian archive) and Debian's static BusyBox in their place. What is verified is everything our
Dockerfiles do on top of a base: the files they copy, the install, the bundle, the entrypoint,
the user, and that the result runs under the manifests' security settings.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "integration" / "docker"
# NB: cached between local runs (debootstrap takes about a minute); build/ is ignored by git
# and by the Docker build context.
CACHE = REPO / "build" / "test-images"
PYTHON_BASE = "danm-test/python-base:bookworm"
BUSYBOX_BASE = "danm-test/busybox-base:static"
PYTHON_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEBIAN_MIRROR = os.environ.get("DANM_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUSYBOX = Path("/bin/busybox")


class DockerError(RuntimeError):
    pass


def _run(
    command: list[str], *, timeout: float, input_bytes: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        command, input=input_bytes, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise DockerError(
            f"{' '.join(command[:6])} ... exited {result.returncode}:\n"
            f"{result.stdout.decode(errors='replace')[-4000:]}\n"
            f"{result.stderr.decode(errors='replace')[-4000:]}"
        )
    return result


@dataclass
class DockerDaemon:
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    def docker(
        self, *args: str, timeout: float = 120, input_bytes: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """``docker ARGS`` against this daemon; raises DockerError with its output on failure."""
        return _run(
            ["docker", "--host", self.host, *args], timeout=timeout, input_bytes=input_bytes
        )

    def output(self, *args: str, timeout: float = 120) -> str:
        return self.docker(*args, timeout=timeout).stdout.decode().strip()

    def stop(self) -> None:
        try:
            containers = self.output("ps", "-aq", timeout=30).split()
            if containers:
                self.docker("rm", "-f", *containers, timeout=60)
        except (DockerError, subprocess.TimeoutExpired):
            pass  # NB: the daemon's own shutdown stops what is left.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        # NB: the managed containerd runs in the daemon's process group; make sure it is gone.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)
        _remove_cgroups(self.root.name)


def _remove_cgroups(name: str) -> None:
    """The (by now empty) cgroups named ``name`` (cgroup v1 and v2 layouts), deepest first."""
    cgroups = Path("/sys/fs/cgroup")
    for top in [*cgroups.glob(name), *cgroups.glob(f"*/{name}")]:
        nested = [d for d in top.rglob("*") if d.is_dir()]
        for directory in sorted(nested, key=lambda d: len(d.parts), reverse=True):
            directory.rmdir()
        top.rmdir()


def _unmount_below(root: Path) -> None:
    prefix = str(root)
    mount_points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for mount_point in sorted(mount_points, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False)


def start_daemon(log_path: Path, timeout: float = 60) -> DockerDaemon:
    # NB: short path: containerd's sockets live below the exec root (108-byte socket paths).
    root = Path(tempfile.mkdtemp(prefix="danm-dk-", dir="/tmp"))
    config = root / "daemon.json"
    config.write_text("{}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                "dockerd",
                "--config-file",
                str(config),
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "docker.pid"),
                "--host",
                f"unix://{root / 'docker.sock'}",
                "--bridge",
                "none",
                # NB: the containers' cgroups go below one of ours, which stop() removes.
                "--cgroup-parent",
                f"/{root.name}",
                "--iptables=false",
                "--ip-masq=false",
                "--log-level",
                "warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = DockerDaemon(root, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            daemon.stop()
            raise DockerError(
                f"dockerd exited {process.returncode}: {log_path.read_text()[-3000:]}"
            )
        try:
            daemon.docker("version", timeout=10)
            return daemon
        except (DockerError, subprocess.TimeoutExpired) as error:
            if time.monotonic() > deadline:
                daemon.stop()
                raise DockerError(
                    f"dockerd not ready in {timeout}s: {log_path.read_text()[-3000:]}"
                ) from error
            time.sleep(0.3)


def _python_base_tar(workdir: Path) -> Path:
    """Debian 12's minimal system with python3 and venv, as a tar (cached under build/)."""
    key = "-".join(PYTHON_BASE_PACKAGES)
    tar = CACHE / f"bookworm-minbase-{key}.tar"
    if tar.is_file():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = workdir / "bookworm-rootfs"
    try:
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PYTHON_BASE_PACKAGES)}",
                "bookworm",
                str(rootfs),
                DEBIAN_MIRROR,
            ],
            timeout=900,
        )
        for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            leftover.unlink()
        partial = tar.with_suffix(".partial")
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
        partial.rename(tar)
    finally:
        _unmount_below(rootfs)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tar


def import_python_base(daemon: DockerDaemon, workdir: Path) -> str:
    """The stand-in for ``python:3.11-slim``: Debian's python3 3.11 with venv.

    Builds reach PyPI through whatever this machine's egress needs, so the image trusts the
    certificate authorities the host trusts (the host's bundle, handed to pip by PIP_CERT), the
    way an organisation's own base image would.
    """
    tar = _python_base_tar(workdir)
    daemon.docker("import", str(tar), f"{PYTHON_BASE}-debootstrap", timeout=300)
    context = workdir / "python-base-context"
    context.mkdir(exist_ok=True)
    shutil.copyfile(HOST_CA_BUNDLE, context / "host-ca-bundle.crt")
    (context / "Dockerfile").write_text(
        f"FROM {PYTHON_BASE}-debootstrap\n"
        "COPY host-ca-bundle.crt /etc/ssl/certs/host-ca-bundle.crt\n"
        "ENV PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt LANG=C.UTF-8\n"
    )
    daemon.docker("build", "--network", "none", "--tag", PYTHON_BASE, str(context), timeout=300)
    shutil.rmtree(context)
    return PYTHON_BASE


def import_busybox_base(daemon: DockerDaemon, workdir: Path) -> str:
    """The stand-in for ``busybox:1.36``: Debian's static BusyBox with every applet linked."""
    rootfs = workdir / "busybox-rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = _run([str(BUSYBOX), "--list"], timeout=30).stdout.decode().split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    tar = workdir / "busybox-base.tar"
    _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tar), "."], timeout=120)
    daemon.docker("import", str(tar), BUSYBOX_BASE, timeout=120)
    shutil.rmtree(rootfs)
    tar.unlink()
    return BUSYBOX_BASE


def build_image(daemon: DockerDaemon, component: str, tag: str, log_path: Path) -> str:
    """``docker build`` of integration/docker/COMPONENT with the stand-in bases; returns ``tag``."""
    result = daemon.docker(
        "build",
        # NB: RUN steps reach PyPI through the host's network: this daemon has no bridge.
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={PYTHON_BASE}",
        "--build-arg",
        f"BUSYBOX_IMAGE={BUSYBOX_BASE}",
        "--file",
        str(DOCKERFILES / component / "Dockerfile"),
        "--tag",
        tag,
        str(REPO),
        timeout=900,
    )
    log_path.write_bytes(result.stdout + result.stderr)
    return tag


def inspect_image(daemon: DockerDaemon, tag: str) -> dict[str, object]:
    document = json.loads(daemon.output("image", "inspect", tag))
    config = document[0]["Config"]
    assert isinstance(config, dict)
    return config
