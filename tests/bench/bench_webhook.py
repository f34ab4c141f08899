"""Admission latency and throughput of the real webhook for a DanmNet CREATE review.

The webhook runs as the real console script (``.venv/bin/webhook``) with certificates from
``webhook certs``, configured against the API stand-in (a DanmNet CREATE makes no API call, so
the stand-in only provides the kubeconfig). A client in this process keeps 16 concurrent HTTPS
keep-alive connections busy posting the same AdmissionReview, the way kube-apiserver reuses its
connections, and times every review from send to parsed answer. The pure decision (no HTTP) is
timed separately to show where the time goes.

Run alone with ``.venv/bin/python -m tests.bench.bench_webhook``; ``make bench`` collects ``run()``.
Client and server share the machine, so on 2 cores the numbers include the client's CPU cost.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLIENTS = 16
WARMUP_REVIEWS = 800
MEASURED_REVIEWS = 16_000


def _review() -> bytes:
    danmnet = {
        "apiVersion": "danm.k8s.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "bench", "namespace": "default", "uid": "0b7c"},
        "spec": {
            "NetworkID": "bench",
            "Options": {
                "host_device": "ens4",
                "cidr": "10.10.0.0/24",
                "routes": {"10.20.0.0/16": "10.10.0.1"},
                "allocation_pool": {"start": "10.10.0.10", "end": "10.10.0.200"},
            },
        },
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "2f1c0a7e-bench",
            "kind": {"group": "danm.k8s.io", "version": "v1", "kind": "DanmNet"},
            "resource": {"group": "danm.k8s.io", "version": "v1", "resource": "danmnets"},
            "operation": "CREATE",
            "name": "bench",
            "namespace": "default",
            "userInfo": {"username": "admin"},
            "object": danmnet,
            "oldObject": None,
            "dryRun": False,
        },
    }
    return json.dumps(review).encode()


def _script() -> list[str]:
    installed = Path(sys.executable).parent / "webhook"
    if installed.is_file():
        return [str(installed)]
    return [sys.executable, "-c", "import sys; from webhook.cli import main; sys.exit(main())"]


def _format_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


async def _load(url: str, ca: str, body: bytes) -> tuple[list[float], float]:
    import aiohttp

    context = ssl.create_default_context(cafile=ca)
    connector = aiohttp.TCPConnector(ssl=context, limit=CLIENTS)
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> float:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.json()
            if not answer["response"]["allowed"]:
                raise RuntimeError(f"benchmark review was denied: {answer}")
            return time.perf_counter() - started

        async def worker(count: int, sink: list[float] | None) -> None:
            for _ in range(count):
                elapsed = await one()
                if sink is not None:
                    sink.append(elapsed)

        await asyncio.gather(*(worker(WARMUP_REVIEWS // CLIENTS, None) for _ in range(CLIENTS)))
        started = time.perf_counter()
        await asyncio.gather(
            *(worker(MEASURED_REVIEWS // CLIENTS, latencies) for _ in range(CLIENTS))
        )
        wall = time.perf_counter() - started
    return latencies, wall


def _decision_time(body: bytes) -> float:
    from webhook.admission import Reviewer
    from webhook.review import parse_review

    class NoApi:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"DanmNet CREATE must not call the API ({name})")

    reviewer = Reviewer(NoApi())
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(2000):
            json.dumps(reviewer.review_network(parse_review(body)))
        samples.append((time.perf_counter() - started) / 2000)
    return statistics.median(samples)


def run() -> list[tuple[str, str]]:
    from tests.kubeapi.testing import start_in_thread

    body = _review()
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        workdir = Path(tmp)
        certs = workdir / "certs"
        subprocess.run(
            [*_script(), "certs", "--out", str(certs), "--ip", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        kubeapi = start_in_thread(workdir / "kubeapi")
        log_path = workdir / "webhook.log"
        process = None
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *_script(),
                        "--bind-address",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--tls-cert-file",
                        str(certs / "cert.pem"),
                        "--tls-private-key-file",
                        str(certs / "key.pem"),
                        "--kubeconfig",
                        str(kubeapi.kubeconfig_path),
                        "--log-level",
                        "WARNING",
                    ],
                    stdout=log,
                    stderr=log,
                )
            port = _wait_for_port(log_path, process)
            url = f"https://127.0.0.1:{port}/netvalidation"
            latencies, wall = asyncio.run(_load(url, str(certs / "ca.pem"), body))
        finally:
            kubeapi.stop()
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return [
        (
            f"DanmNet CREATE over HTTPS, {CLIENTS} concurrent clients: median latency",
            _format_ms(statistics.median(latencies)),
        ),
        (f"same: p99 latency ({len(latencies)} reviews)", _format_ms(p99)),
        ("same: throughput", f"{len(latencies) / wall:.0f} reviews/s"),
        (
            "DanmNet CREATE decision alone (parse, rules, alloc, patch, encode)",
            f"{_decision_time(body) * 1e6:.0f} µs",
        ),
    ]


def _wait_for_port(log_path: Path, process: subprocess.Popen[bytes]) -> int:
    # NB: the CLI prints its bound address at startup whatever the log level.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if "listening on https://" in line:
                return int(line.rsplit(":", 1)[1])
        if process.poll() is not None:
            raise RuntimeError(f"webhook exited: {log_path.read_text()}")
        time.sleep(0.05)
    raise RuntimeError("webhook did not start")


if __name__ == "__main__":
    for name, result in run():
        print(f"{name}: {result}")
