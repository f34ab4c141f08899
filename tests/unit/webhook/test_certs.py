"""The certificate tool: names, key usage, chain of trust, files, manifest and CLI."""

from __future__ import annotations

import base64
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook import certs
from webhook.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_service_dns_names():
    assert certs.service_dns_names("svc", "ns") == [
        "svc",
        "svc.ns",
        "svc.ns.svc",
        "svc.ns.svc.cluster.local",
    ]


def test_issued_certificate_is_signed_by_the_ca_for_the_names():
    issued = certs.issue(certs.service_dns_names("svc", "ns"), ["127.0.0.1"])
    ca = x509.load_pem_x509_certificate(issued.ca_pem)
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == certs.service_dns_names("svc", "ns")
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize(("names", "ips"), [([], []), (["a"], ["not-an-ip"])])
def test_issue_refuses_bad_input(names, ips):
    with pytest.raises(certs.CertError):
        certs.issue(names, ips)


def test_write_certs_modes(tmp_path):
    paths = certs.write_certs(certs.issue(["a"]), tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == ["ca.pem", "cert.pem", "key.pem"]
    assert stat.S_IMODE(paths["key.pem"].stat().st_mode) == 0o600
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_fill_ca_bundle_keeps_comments_and_refills():
    manifest = "# why\nwebhooks:\n- clientConfig:\n    caBundle: ${CA_BUNDLE}  # filled\n"
    filled = certs.fill_ca_bundle(manifest, "QUJD")
    assert filled == "# why\nwebhooks:\n- clientConfig:\n    caBundle: QUJD\n"
    assert certs.fill_ca_bundle(filled, "REVG").endswith("caBundle: REVG\n")
    with pytest.raises(certs.CertError):
        certs.fill_ca_bundle("kind: Service\n", "QUJD")


def test_cli_certs_writes_files_secret_and_manifest(tmp_path, capsys):
    manifest = REPO / "integration" / "manifests" / "webhook" / "webhook-configuration.yaml"
    out = tmp_path / "certs"
    code = main(
        [
            "certs",
            "--service",
            "svc",
            "--namespace",
            "ns",
            "--out",
            str(out),
            "--ip",
            "127.0.0.1",
            "--manifest",
            str(manifest),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert str(out / "webhook-configuration.yaml") in printed
    ca_bundle = base64.b64encode((out / "ca.pem").read_bytes()).decode()
    filled = (out / "webhook-configuration.yaml").read_text()
    assert filled.count(f"caBundle: {ca_bundle}") == 3
    assert "${CA_BUNDLE}" not in filled
    secret = (out / "secret.yaml").read_text()
    assert "namespace: ns" in secret
    assert "key.pem: " in secret


def test_cli_certs_reports_errors(tmp_path, capsys):
    code = main(["certs", "--out", str(tmp_path), "--ip", "300.1.1.1"])
    assert code == 1
    assert "webhook certs: invalid IP address" in capsys.readouterr().err


def test_cli_serve_needs_cert_flags():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from webhook.cli import main; sys.exit(main())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--tls-cert-file" in done.stderr
