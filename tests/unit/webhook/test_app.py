"""The aiohttp app: answers, bad input, body limits, threads, TLS context and cert reloading."""

from __future__ import annotations

import asyncio
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from webhook import certs
from webhook.admission import Reviewer
from webhook.app import (
    CertReloader,
    ServeConfig,
    WebhookHandlers,
    build_app,
    make_ssl_context,
    serve,
)

from .builders import body, network, tenant_config
from .fakes import FakeStore


@pytest.fixture
def executor():
    with ThreadPoolExecutor(2) as pool:
        yield pool


async def _client(aiohttp_client: Any, executor: ThreadPoolExecutor, store: Any, **kw: Any) -> Any:
    handlers = WebhookHandlers(Reviewer(store, pick=lambda c: c[0]), executor, **kw)
    return await aiohttp_client(build_app(handlers))


async def test_healthz(aiohttp_client, executor):
    client = await _client(aiohttp_client, executor, FakeStore())
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok"


@pytest.mark.parametrize("path", ["/netvalidation", "/netdeletion"])
async def test_network_review_answered(aiohttp_client, executor, path):
    client = await _client(aiohttp_client, executor, FakeStore())
    response = await client.post(path, data=body(network(cidr="10.0.0.0/24")))
    assert response.status == 200
    review = await response.json()
    assert review["response"]["allowed"] is True
    assert review["response"]["uid"] == "uid-1"
    assert review["apiVersion"] == "admission.k8s.io/v1"


async def test_tenant_network_review_runs_in_a_worker(aiohttp_client, executor):
    store = FakeStore(config=tenant_config([{"name": "ens4", "vniType": "vlan", "vniRange": "9"}]))
    client = await _client(aiohttp_client, executor, store)
    response = await client.post("/netvalidation", data=body(network("TenantNetwork")))
    assert (await response.json())["response"]["allowed"] is True
    assert [c[0] for c in store.calls] == ["tenant_config", "reserve_vni"]


async def test_confvalidation_refuses_networks(aiohttp_client, executor):
    client = await _client(aiohttp_client, executor, FakeStore())
    response = await client.post("/confvalidation", data=body(network()))
    answer = (await response.json())["response"]
    assert answer["allowed"] is False
    assert "K8s API type:DanmNet is not handled by DANM webhook" in answer["status"]["message"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Received review request is empty!"),
        (b"<html>", "not JSON"),
        (b'{"kind": "AdmissionReview"}', "no request"),
    ],
)
async def test_unanswerable_body_is_400(aiohttp_client, executor, data, message):
    client = await _client(aiohttp_client, executor, FakeStore())
    response = await client.post("/netvalidation", data=data)
    assert response.status == 400
    assert message in (await response.json())["message"]


async def test_body_over_limit_is_400(aiohttp_client, executor):
    client = await _client(aiohttp_client, executor, FakeStore(), max_body_bytes=1000)
    response = await client.post("/netvalidation", data=b"x" * 2000)
    assert response.status == 400
    assert "larger than the webhook's limit of 1000 bytes" in (await response.json())["message"]


async def test_chunked_body_over_limit_is_400(aiohttp_client, executor):
    client = await _client(aiohttp_client, executor, FakeStore(), max_body_bytes=1000)

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 500

    response = await client.post("/netvalidation", data=chunks())
    assert response.status == 400


async def test_get_on_review_path_is_405(aiohttp_client, executor):
    client = await _client(aiohttp_client, executor, FakeStore())
    assert (await client.get("/netvalidation")).status == 405


async def test_crash_inside_decision_becomes_denial(aiohttp_client, executor):
    class Broken(FakeStore):
        def connected_pod(self, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    client = await _client(aiohttp_client, executor, Broken())
    data = body(None, operation="DELETE", old=network())
    response = await client.post("/netdeletion", data=data)
    assert response.status == 200
    answer = (await response.json())["response"]
    assert answer["allowed"] is False
    assert "RuntimeError: boom" in answer["status"]["message"]


# ---- TLS


def _write_certs(directory: Path, names: list[str]) -> certs.IssuedCerts:
    issued = certs.issue(names, ["127.0.0.1"])
    certs.write_certs(issued, directory)
    return issued


def test_ssl_context_is_tls12_or_newer(tmp_path):
    _write_certs(tmp_path, ["a"])
    context = make_ssl_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_cert_reloader_picks_up_new_files_and_survives_a_half_written_pair(tmp_path):
    _write_certs(tmp_path, ["a"])
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    reloader = CertReloader(make_ssl_context(cert, key), cert, key)
    assert reloader.check() is False
    second = certs.issue(["b"])
    (tmp_path / "cert.pem").write_bytes(second.cert_pem)  # NB: key not rotated yet
    assert reloader.check() is False
    (tmp_path / "key.pem").write_bytes(second.key_pem)
    assert reloader.check() is True
    assert reloader.reloads == 1


async def test_serve_over_https_and_reload(tmp_path):
    _write_certs(tmp_path, ["first.example"])
    config = ServeConfig(
        "127.0.0.1",
        0,
        str(tmp_path / "cert.pem"),
        str(tmp_path / "key.pem"),
        reload_interval_s=0.05,
    )
    stop = asyncio.Event()
    bound: list[int] = []
    task = asyncio.create_task(
        serve(config, Reviewer(FakeStore()), stop, on_ready=lambda _h, port: bound.append(port))
    )
    try:
        while not bound:
            await asyncio.sleep(0.01)
        url = f"https://127.0.0.1:{bound[0]}"
        first = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        connector = aiohttp.TCPConnector(ssl=first, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(f"{url}/netvalidation", data=body(network())) as response:
                assert (await response.json())["response"]["allowed"] is True
        rotated = _write_certs(tmp_path / "new", ["second.example"])
        for name in ("cert.pem", "key.pem"):
            (tmp_path / name).write_bytes((tmp_path / "new" / name).read_bytes())
        second = ssl.create_default_context(cadata=rotated.ca_pem.decode())
        for _ in range(100):
            await asyncio.sleep(0.05)
            connector = aiohttp.TCPConnector(ssl=second, force_close=True)
            try:
                async with aiohttp.ClientSession(connector=connector) as session:
                    async with session.get(f"{url}/healthz") as response:
                        assert response.status == 200
                        break
            except aiohttp.ClientConnectorCertificateError:
                continue
        else:
            pytest.fail("the rotated certificate was never served")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
