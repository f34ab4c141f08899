"""Certificates, token and kubeconfig for one server instance, written into a work dir.

The kubeconfig is what both kubectl and the official client load, so it points at the
generated CA and an admin client certificate (CN=admin, O=system:masters) like a kubeadm
``admin.conf``; a bearer token is accepted as well, for clients that prefer one.
"""

from __future__ import annotations

import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.kubeapi.pki import new_ca

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)


@dataclass(frozen=True)
class Credentials:
    workdir: Path
    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    client_cert_path: Path
    client_key_path: Path
    token: str

    def server_ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        context.load_verify_locations(self.ca_path)
        # NB: optional so that bearer-token clients without a certificate can connect.
        context.verify_mode = ssl.CERT_OPTIONAL
        return context


def create_credentials(workdir: Path) -> Credentials:
    workdir.mkdir(parents=True, exist_ok=True)
    ca = new_ca("kubeapi-ca")
    server = ca.issue_server(["localhost", "kubernetes.default.svc"], ["127.0.0.1", "::1"])
    client = ca.issue_client(ADMIN_USER, list(ADMIN_GROUPS))
    paths = {
        "ca.crt": ca.cert_pem,
        "server.crt": server.cert_pem,
        "server.key": server.key_pem,
        "admin.crt": client.cert_pem,
        "admin.key": client.key_pem,
    }
    for name, content in paths.items():
        target = workdir / name
        target.write_bytes(content)
        if name.endswith(".key"):
            target.chmod(0o600)
    token = secrets.token_hex(16)
    (workdir / "token").write_text(token)
    return Credentials(
        workdir=workdir,
        ca_path=workdir / "ca.crt",
        server_cert_path=workdir / "server.crt",
        server_key_path=workdir / "server.key",
        client_cert_path=workdir / "admin.crt",
        client_key_path=workdir / "admin.key",
        token=token,
    )


def write_kubeconfig(path: Path, url: str, credentials: Credentials) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubeapi",
                "cluster": {
                    "server": url,
                    "certificate-authority": str(credentials.ca_path.resolve()),
                },
            }
        ],
        "users": [
            {
                "name": ADMIN_USER,
                "user": {
                    "client-certificate": str(credentials.client_cert_path.resolve()),
                    "client-key": str(credentials.client_key_path.resolve()),
                },
            }
        ],
        "contexts": [
            {
                "name": "kubeapi",
                "context": {"cluster": "kubeapi", "user": ADMIN_USER, "namespace": "default"},
            }
        ],
        "current-context": "kubeapi",
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
