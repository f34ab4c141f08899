"""``webhook --processes N``: N serving processes on one socket, supervised by the parent."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from webhook import certs
from webhook.cli import _supervise, main

from .builders import body, network

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_processes_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--processes", "0", "--tls-cert-file", "c", "--tls-private-key-file", "k"])
    assert exited.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_supervisor_stops_the_others_when_one_process_exits(tmp_path):
    first = tmp_path / "first"

    def serve_one() -> int:
        try:
            os.close(os.open(first, os.O_CREAT | os.O_EXCL))
        except FileExistsError:

            def stopped(_signum: int, _frame: object) -> None:
                (tmp_path / f"stopped-{os.getpid()}").touch()
                os._exit(0)

            signal.signal(signal.SIGTERM, stopped)
            (tmp_path / f"ready-{os.getpid()}").touch()
            time.sleep(60)
            return 5
        # NB: the first process "crashes" once the others serve (a SIGTERM during their
        # start-up would end them before they can record it).
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return 3

    handler_before = signal.getsignal(signal.SIGTERM)
    assert _supervise(3, serve_one) == 1
    assert len(list(tmp_path.glob("stopped-*"))) == 2
    assert signal.getsignal(signal.SIGTERM) == handler_before


def test_a_process_killed_by_the_stop_signal_itself_is_a_clean_stop(tmp_path):
    # NB: a serving process still starting up has no SIGTERM handler of its own yet, so the
    # forwarded stop kills it outright; the webhook must still exit 0, as asked.
    def serve_one() -> int:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        (tmp_path / f"ready-{os.getpid()}").touch()
        if len(list(tmp_path.glob("ready-*"))) == 2:
            os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)
        return 7

    assert _supervise(2, serve_one) == 0


# ---- the real console script


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    context: ssl.SSLContext
    log_path: Path

    def children(self) -> list[int]:
        return _children(self.process.pid)

    def review(self) -> dict[str, object]:
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}/netvalidation",
            data=body(network(cidr="10.0.0.0/24")),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
            response: dict[str, object] = json.loads(answer.read())["response"]
        return response


def _script() -> list[str]:
    return [sys.executable, "-c", "import sys; from webhook.cli import main; sys.exit(main())"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    certs.write_certs(certs.issue(["webhook"], ["127.0.0.1"]), tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    log_path = tmp_path / "webhook.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *_script(),
                "--bind-address",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-cert-file",
                str(tmp_path / certs.CERT_FILE),
                "--tls-private-key-file",
                str(tmp_path / certs.KEY_FILE),
                "--kubeconfig",
                str(kubeconfig),
                "--processes",
                "2",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        port = _wait_for_listeners(log_path, process, 2)
        context = ssl.create_default_context(cafile=str(tmp_path / certs.CA_FILE))
        yield Server(process, port, context, log_path)
    finally:
        if process.poll() is None:
            serving = _children(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in serving:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.kill()
                process.wait(timeout=30)


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except FileNotFoundError:
        return []


def _wait_for_listeners(log_path: Path, process: subprocess.Popen[bytes], count: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # NB: one "webhook.app: listening on" log line per serving process.
        lines = [
            line
            for line in log_path.read_text().splitlines()
            if "webhook.app: listening on" in line
        ]
        if len(lines) >= count:
            ports = {int(line.rsplit(":", 1)[1]) for line in lines}
            assert len(ports) == 1, lines
            return ports.pop()
        assert process.poll() is None, log_path.read_text()
        time.sleep(0.05)
    pytest.fail(f"the webhook did not start: {log_path.read_text()}")


def test_two_processes_answer_and_stop_on_sigterm(server):
    children = server.children()
    assert len(children) == 2
    for _ in range(6):
        answer = server.review()
        assert answer["allowed"] is True
        assert answer["patchType"] == "JSONPatch"
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log_path.read_text()
    for pid in children:
        assert not Path(f"/proc/{pid}").exists()


def test_a_dead_process_stops_the_webhook(server):
    first, second = server.children()
    os.kill(first, signal.SIGKILL)
    assert server.process.wait(timeout=30) == 1
    assert f"serving process {first} exited" in server.log_path.read_text()
    assert not Path(f"/proc/{second}").exists()
