"""Certificates for the webhook: a private CA and a serving certificate the API server trusts.

The API server calls the webhook at ``https://<service>.<namespace>.svc:443`` and verifies the
certificate against the ``caBundle`` of the webhook configuration. The original shipped a shell
script that needed openssl and a CSR approved through the cluster's signer (§11.3); this tool
needs neither: it makes a self-contained CA, signs the serving certificate with every name the
API server may use for the Service (``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``,
``<svc>.<ns>.svc.cluster.local``, plus extra DNS names and IPs for tests and URL-based
configurations), writes the PEM files and puts the CA into the manifest's ``caBundle`` fields.

Keys are ECDSA P-256: smaller and cheaper per TLS handshake than RSA, accepted by every
supported Kubernetes version.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE: Final = "ca.pem"
CERT_FILE: Final = "cert.pem"
KEY_FILE: Final = "key.pem"
SECRET_FILE: Final = "secret.yaml"
DEFAULT_VALID_DAYS: Final = 825

_CA_BUNDLE_LINE = re.compile(r"^(?P<indent>\s*)caBundle:.*$", re.MULTILINE)


class CertError(Exception):
    """The certificate files or the manifest cannot be produced as asked."""


def service_dns_names(service: str, namespace: str) -> list[str]:
    """Every DNS name the API server may use to reach a Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


@dataclass(frozen=True)
class IssuedCerts:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """The CA as the base64 text a webhook configuration's ``caBundle`` holds."""
        return base64.b64encode(self.ca_pem).decode("ascii")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    *,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: datetime.datetime | None = None,
) -> IssuedCerts:
    """A new CA and a serving certificate for ``dns_names`` and ``ip_addresses``."""
    if not dns_names and not ip_addresses:
        raise CertError("a serving certificate needs at least one DNS name or IP address")
    try:
        ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
    except ValueError as error:
        raise CertError(f"invalid IP address for the certificate: {error}") from None
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    end = start + datetime.timedelta(days=valid_days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("danm-webhook-ca")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    common_name = dns_names[2] if len(dns_names) > 2 else (dns_names or [str(ips[0])])[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCerts(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    # NB: write-then-rename, so a webhook watching the directory never reads half a file.
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def write_certs(certs: IssuedCerts, out_dir: Path) -> dict[str, Path]:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` (mode 0600) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in (CA_FILE, CERT_FILE, KEY_FILE)}
    _write(paths[CA_FILE], certs.ca_pem, 0o644)
    _write(paths[KEY_FILE], certs.key_pem, 0o600)
    _write(paths[CERT_FILE], certs.cert_pem, 0o644)
    return paths


def fill_ca_bundle(manifest: str, ca_bundle: str) -> str:
    """``manifest`` with every ``caBundle:`` line set to ``ca_bundle``; comments are kept."""
    filled, count = _CA_BUNDLE_LINE.subn(
        lambda match: f"{match.group('indent')}caBundle: {ca_bundle}", manifest
    )
    if count == 0:
        raise CertError("the manifest has no caBundle field to fill in")
    return filled


def secret_manifest(certs: IssuedCerts, *, name: str, namespace: str) -> str:
    """A ``kubernetes.io/tls``-style Secret holding ``cert.pem``/``key.pem`` for the Deployment."""
    cert = base64.b64encode(certs.cert_pem).decode("ascii")
    key = base64.b64encode(certs.key_pem).decode("ascii")
    return (
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        "type: Opaque\n"
        "data:\n"
        f"  {CERT_FILE}: {cert}\n"
        f"  {KEY_FILE}: {key}\n"
    )
