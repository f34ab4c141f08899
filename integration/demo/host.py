"""The demo's footprint on this machine: network namespaces, links, child processes, work dir.

Why it exists: ``make demo`` must leave nothing behind, even when interrupted, and
``make demo-down`` must find what an interrupted run left. Everything the demo creates is
therefore recognisable without any in-memory state:

* network namespaces are named ``danmdemo-*``; every link lives inside one of them (the
  "nodes" have their own ``ens3``/``ens4``), so the root namespace gets no links at all;
* every child process carries the work dir (``WORKDIR``) in its command line (a kubeconfig
  path, a log path or a ``--marker``), and its pid is recorded in ``WORKDIR/processes.json``;
* files only go below ``WORKDIR``; kubectl's cache too (``HOME`` points there).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from integration.demo.scenario import PREFIX

WORKDIR = Path("/tmp/danmdemo")
NETNS_DIR = Path("/var/run/netns")
STOP_TIMEOUT_S = 10.0
_IP_TIMEOUT_S = 30


class HostError(Exception):
    """A host command failed; the message says which and why."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False
    )
    if check and done.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def add_netns(name: str) -> None:
    """A fresh namespace with its loopback up (a runtime's ``loopback`` plugin does that)."""
    if not name.startswith(PREFIX):
        raise HostError(f"demo namespaces must start with {PREFIX!r}: {name!r}")
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def demo_netns() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(PREFIX))


def delete_netns(name: str) -> None:
    if (NETNS_DIR / name).exists():
        ip("netns", "delete", name, check=False)


def links_in(netns: str | None) -> list[str]:
    """Link names in ``netns`` (``None``: the root namespace)."""
    args = ["-n", netns] if netns else []
    done = ip(*args, "-o", "link", "show", check=False)
    names = []
    for line in done.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def root_demo_links() -> list[str]:
    return [name for name in links_in(None) if name.startswith(PREFIX)]


def wire_nodes(nodes: Sequence[str], underlay: Sequence[str]) -> None:
    """Two nodes cabled ``ens3``-``ens3`` and ``ens4``-``ens4`` by veth pairs.

    ``ens4`` gets an underlay address per node (``underlay[i]``): the VxLAN interfaces
    netwatcher makes take their source address from it and send to their multicast group on it.
    """
    first, second = nodes
    for nic in ("ens3", "ens4"):
        ip("-n", first, "link", "add", nic, "type", "veth", "peer", "name", nic, "netns", second)
    for node, address in zip(nodes, underlay, strict=True):
        ip("-n", node, "addr", "add", address, "dev", "ens4")
        for nic in ("ens3", "ens4"):
            ip("-n", node, "link", "set", nic, "up")


# --------------------------------------------------------------------------------------------
# Processes


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class Processes:
    """The demo's child processes, recorded in ``WORKDIR/processes.json`` as they start."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []
        self.record = workdir / "processes.json"

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        netns: str | None = None,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> Child:
        """Start ``argv`` (inside ``netns`` through ``ip netns exec``), stderr to its log."""
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
        with log.open("ab") as log_file:
            # NB: a new session, so a Ctrl-C in the terminal reaches only the demo, which then
            # stops the children in order (the API server last).
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        self._save()
        return child

    def _save(self) -> None:
        rows = [{"name": c.name, "pid": c.process.pid} for c in self.children]
        self.record.write_text(json.dumps(rows))

    def stop(self, child: Child) -> None:
        stop_process(child.process.pid, lambda: child.process.poll() is not None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=1)
        for stream in (child.process.stdout,):
            if stream is not None:
                stream.close()

    def stop_all(self) -> None:
        """Stop the children newest first (servers before the API they talk to)."""
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()
        self._save()


def stop_process(pid: int, gone: Callable[[], bool] | None = None) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``."""

    def is_gone() -> bool:
        if gone is not None:
            return gone()
        return not Path(f"/proc/{pid}").exists() or _is_zombie(pid)

    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if is_gone():
                return
            time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def leftover_processes(workdir: Path = WORKDIR) -> list[tuple[int, str]]:
    """Live processes (not this one) whose command line mentions the work dir."""
    marker = str(workdir).encode()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and not _is_zombie(int(entry.name)):
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def recorded_pids(workdir: Path = WORKDIR) -> list[int]:
    try:
        rows = json.loads((workdir / "processes.json").read_text())
    except (OSError, ValueError):
        return []
    return [int(row["pid"]) for row in rows if isinstance(row, dict) and "pid" in row]


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
