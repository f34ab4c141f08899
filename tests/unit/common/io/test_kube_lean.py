"""``common.io.kube_lean`` configuration: kubeconfig and in-cluster parsing, TLS material, and
the no-server paths. The HTTP behaviour itself is in tests/contract/test_kube_adapter.py."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.io import kube
from common.io.kube_lean import (
    KubeConnection,
    LeanKubeApi,
    load_incluster,
    load_kubeconfig,
    parse_kubeconfig,
    ssl_context,
)
from common.model.resources import CONFIGMAPS

REPO = Path(__file__).resolve().parents[4]
KUBECONFIG = Path("/etc/kube/config")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _document(
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    current: str = "main",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://other:6443"}},
            {"name": "c", "cluster": {"server": "https://api:6443", **(cluster or {})}},
        ],
        "users": [
            {"name": "u", "user": user or {}},
            {"name": "v", "user": {"token": "second"}},
        ],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u"}},
            {"name": "alt", "context": {"cluster": "other", "user": "v"}},
        ],
        "current-context": current,
    }


# ------------------------------------------------------------------------- parse_kubeconfig


@pytest.mark.parametrize(
    ("cluster", "user", "expected"),
    [
        pytest.param(
            {},
            {"token": "abc"},
            KubeConnection(server="https://api:6443", token="abc"),
            id="token",
        ),
        pytest.param(
            {"certificate-authority-data": _b64(b"CA PEM"), "tls-server-name": "kubernetes"},
            {
                "client-certificate-data": _b64(b"CERT PEM"),
                "client-key-data": _b64(b"KEY PEM"),
            },
            KubeConnection(
                server="https://api:6443",
                ca_pem=b"CA PEM",
                client_cert_pem=b"CERT PEM",
                client_key_pem=b"KEY PEM",
                tls_server_name="kubernetes",
            ),
            id="inline-pem",
        ),
        pytest.param(
            {"insecure-skip-tls-verify": True},
            {"username": "admin", "password": "secret"},
            KubeConnection(
                server="https://api:6443",
                username="admin",
                password="secret",
                insecure_skip_tls_verify=True,
            ),
            id="basic-auth-insecure",
        ),
        pytest.param(
            {},
            {},
            KubeConnection(server="https://api:6443"),
            id="anonymous",
        ),
    ],
)
def test_parse_kubeconfig(
    cluster: dict[str, Any], user: dict[str, Any], expected: KubeConnection
) -> None:
    assert parse_kubeconfig(_document(cluster, user), path=KUBECONFIG) == expected


def test_a_named_context_wins_over_the_current_one() -> None:
    parsed = parse_kubeconfig(_document(), path=KUBECONFIG, context="alt")
    assert (parsed.server, parsed.token) == ("https://other:6443", "second")


def test_files_are_read_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki/ca.crt").write_bytes(b"CA FROM FILE")
    (tmp_path / "pki/client.crt").write_bytes(b"CERT FROM FILE")
    (tmp_path / "pki/client.key").write_bytes(b"KEY FROM FILE")
    (tmp_path / "token").write_text("tok-from-file\n")
    document = _document(
        {"certificate-authority": "pki/ca.crt"},
        {
            "client-certificate": "pki/client.crt",
            "client-key": str(tmp_path / "pki/client.key"),
            "tokenFile": "token",
        },
    )
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(document))
    assert load_kubeconfig(path) == KubeConnection(
        server="https://api:6443",
        ca_pem=b"CA FROM FILE",
        client_cert_pem=b"CERT FROM FILE",
        client_key_pem=b"KEY FROM FILE",
        token="tok-from-file",
    )


def test_yaml_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        """
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t0k3n}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
"""
    )
    assert load_kubeconfig(path) == KubeConnection(
        server="https://10.0.0.1:443", token="t0k3n", insecure_skip_tls_verify=True
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(["not", "a", "mapping"], "is not a mapping", id="not-mapping"),
        pytest.param({**_document(), "current-context": ""}, "no current-context", id="no-ctx"),
        pytest.param(_document(current="nope"), "no context named 'nope'", id="unknown-ctx"),
        pytest.param(
            _document(user={"exec": {"command": "aws"}}), "exec credential plugin", id="exec"
        ),
        pytest.param(
            _document(user={"auth-provider": {"name": "oidc"}}), "auth-provider", id="provider"
        ),
        pytest.param(_document(cluster={"server": ""}), "has no server", id="no-server"),
        pytest.param(
            _document(cluster={"certificate-authority-data": "!!!"}), "not base64", id="bad-b64"
        ),
        pytest.param(
            _document(cluster={"certificate-authority": "/nonexistent/ca.crt"}),
            "cannot read CA file /nonexistent/ca.crt",
            id="missing-ca",
        ),
    ],
)
def test_bad_kubeconfig_is_a_kube_error(document: Any, message: str) -> None:
    with pytest.raises(kube.KubeError, match=message):
        parse_kubeconfig(document, path=KUBECONFIG)


def test_missing_or_broken_file_is_a_kube_error(tmp_path: Path) -> None:
    with pytest.raises(kube.KubeError, match="cannot load Kubernetes client config"):
        LeanKubeApi.connect(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    with pytest.raises(kube.KubeError, match="not valid YAML"):
        load_kubeconfig(broken)


# ---------------------------------------------------------------------------- in-cluster


def test_in_cluster(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_bytes(b"SA CA")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert load_incluster(environ, secrets_dir=tmp_path) == KubeConnection(
        server="https://[fd00::1]:443", ca_pem=b"SA CA", token="sa-token"
    )


@pytest.mark.parametrize(
    ("environ", "files", "message"),
    [
        pytest.param({}, True, "not running in a cluster", id="no-env"),
        pytest.param(
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            False,
            "cannot read service-account token",
            id="no-token",
        ),
    ],
)
def test_in_cluster_errors(
    tmp_path: Path, environ: dict[str, str], files: bool, message: str
) -> None:
    if files:
        (tmp_path / "token").write_text("t")
        (tmp_path / "ca.crt").write_bytes(b"x")
    with pytest.raises(kube.KubeError, match=message):
        load_incluster(environ, secrets_dir=tmp_path)


def test_connect_without_kubeconfig_outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kube.KubeError, match="in-cluster service account"):
        LeanKubeApi.connect()


# ---------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("connection", "header"),
    [
        (KubeConnection(server="s", token="t"), "Bearer t"),
        (KubeConnection(server="s", token="t", username="a", password="b"), "Bearer t"),
        (KubeConnection(server="s", username="a", password="b"), "Basic YTpi"),
        (KubeConnection(server="s", username="a"), None),
        (KubeConnection(server="s"), None),
    ],
)
def test_authorization_header(connection: KubeConnection, header: str | None) -> None:
    assert connection.authorization() == header


def test_ssl_context_verifies_unless_told_not_to() -> None:
    strict = ssl_context(KubeConnection(server="https://x"))
    assert (strict.verify_mode, strict.check_hostname) == (ssl.CERT_REQUIRED, True)
    loose = ssl_context(KubeConnection(server="https://x", insecure_skip_tls_verify=True))
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)


def test_bad_tls_material_is_a_kube_error() -> None:
    with pytest.raises(kube.KubeError, match="cannot use the TLS material"):
        ssl_context(KubeConnection(server="https://x", ca_pem=b"not a certificate"))
    with pytest.raises(kube.KubeError, match="cannot use the TLS material"):
        ssl_context(KubeConnection(server="https://x", client_cert_pem=b"junk"))


def test_client_certificate_scratch_files_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(kube.KubeError):
        ssl_context(KubeConnection(server="https://x", client_cert_pem=b"junk"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("server", ["ftp://host", "https://", "api:6443"])
def test_server_must_be_an_http_url(server: str) -> None:
    with pytest.raises(kube.KubeError, match="is not http"):
        LeanKubeApi(KubeConnection(server=server))


# -------------------------------------------------------------------------- no server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_unreachable_server_is_kube_unavailable(scheme: str) -> None:
    connection = KubeConnection(server=f"{scheme}://127.0.0.1:{_closed_port()}", token="t")
    with LeanKubeApi(connection, request_timeout_s=5) as api:
        with pytest.raises(kube.KubeUnavailable, match="unreachable") as caught:
            api.get(CONFIGMAPS, "default", "x")
    assert isinstance(caught.value.__cause__, OSError)
    assert kube.is_retryable(caught.value)


def test_json_patch_needs_a_list_and_merge_patch_an_object() -> None:
    with LeanKubeApi(KubeConnection(server="https://127.0.0.1:1")) as api:
        with pytest.raises(TypeError, match="list of operations"):
            api.patch(CONFIGMAPS, "ns", "x", {"a": 1}, patch_type="json")
        with pytest.raises(TypeError, match="JSON object"):
            api.patch(CONFIGMAPS, "ns", "x", [{"op": "add"}], patch_type="merge")


def test_import_loads_neither_the_official_client_nor_yaml() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, common.io.kube_lean; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'kubernetes', 'urllib3', 'yaml', 'pyroute2'}))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
