"""Throughput of the API stand-in: GETs and conflicting read-modify-PUTs from 8 clients.

Each client is a thread with its own keep-alive HTTPS connection (http.client, lighter than
the official client so the numbers measure the server). Loops are bounded in both count and
time and only talk to the stand-in on 127.0.0.1.

Run: ``.venv/bin/python -m tests.bench.bench_kubeapi``
"""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tests.kubeapi.testing import RunningKubeApi, start_in_thread

CLIENTS = 8
DURATION_SECONDS = 3.0
MAX_REQUESTS_PER_CLIENT = 20_000
PATH = "/api/v1/namespaces/default/configmaps"


class Connection:
    def __init__(self, kubeapi: RunningKubeApi) -> None:
        context = ssl.create_default_context(cafile=str(kubeapi.ca_path))
        context.load_cert_chain(
            kubeapi.credentials.client_cert_path, kubeapi.credentials.client_key_path
        )
        parsed = urlparse(kubeapi.url)
        self.http = http.client.HTTPSConnection(
            parsed.hostname or "127.0.0.1", parsed.port, context=context, timeout=30
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        self.http.request(method, path, body=payload, headers=headers)
        response = self.http.getresponse()
        return response.status, json.loads(response.read())

    def close(self) -> None:
        self.http.close()


def _run_clients(kubeapi: RunningKubeApi, work: Any) -> tuple[float, list[dict[str, int]]]:
    counters = [{"requests": 0, "updates": 0, "conflicts": 0} for _ in range(CLIENTS)]
    deadline = time.monotonic() + DURATION_SECONDS
    connections = [Connection(kubeapi) for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=work, args=(connections[i], counters[i], deadline))
        for i in range(CLIENTS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for connection in connections:
        connection.close()
    return elapsed, counters


def _gets(connection: Connection, counter: dict[str, int], deadline: float) -> None:
    while time.monotonic() < deadline and counter["requests"] < MAX_REQUESTS_PER_CLIENT:
        status, _ = connection.call("GET", f"{PATH}/bench")
        assert status == 200
        counter["requests"] += 1


def _conflicting_puts(connection: Connection, counter: dict[str, int], deadline: float) -> None:
    while time.monotonic() < deadline and counter["requests"] < MAX_REQUESTS_PER_CLIENT:
        _, current = connection.call("GET", f"{PATH}/bench")
        current["data"]["n"] = str(int(current["data"]["n"]) + 1)
        status, _ = connection.call("PUT", f"{PATH}/bench", current)
        counter["requests"] += 2
        if status == 200:
            counter["updates"] += 1
        elif status == 409:
            counter["conflicts"] += 1
        else:
            raise AssertionError(f"unexpected status {status}")


def run() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-kubeapi-") as workdir:
        with start_in_thread(Path(workdir)) as kubeapi:
            setup = Connection(kubeapi)
            setup.call("POST", PATH, {"metadata": {"name": "bench"}, "data": {"n": "0"}})
            get_elapsed, get_counts = _run_clients(kubeapi, _gets)
            put_elapsed, put_counts = _run_clients(kubeapi, _conflicting_puts)
            _, final = setup.call("GET", f"{PATH}/bench")
            setup.close()
    gets = sum(c["requests"] for c in get_counts)
    updates = sum(c["updates"] for c in put_counts)
    conflicts = sum(c["conflicts"] for c in put_counts)
    requests = sum(c["requests"] for c in put_counts)
    if int(final["data"]["n"]) != updates:
        raise AssertionError(f"lost updates: counter {final['data']['n']} != {updates}")
    return [
        ("kubeapi GET req/s (8 clients)", f"{gets / get_elapsed:.0f}"),
        ("kubeapi read-modify-PUT req/s (8 clients, one object)", f"{requests / put_elapsed:.0f}"),
        ("kubeapi successful updates/s", f"{updates / put_elapsed:.0f}"),
        ("kubeapi 409 conflicts/s", f"{conflicts / put_elapsed:.0f}"),
    ]


def main() -> None:
    for name, value in run():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
