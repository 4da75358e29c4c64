"""Throw-away TLS material for the fake fal server.

One self-signed certificate (EC P-256, SAN 127.0.0.1 / ::1 / localhost) is made per process
with `cryptography`, written to a private temporary directory and removed at exit. Every
`FakeFal` in the process shares it, so `SSL_CERT_FILE` stays valid when a second fake starts.

Files:
- ``cert_path``: the certificate alone (PEM) - the trust anchor and the server certificate.
- ``key_path``: its private key (PEM, unencrypted).
- ``bundle_path``: the certificate followed by certifi's public roots (when certifi is
  installed). Point ``SSL_CERT_FILE`` here so httpx clients in the same process still trust
  ordinary public hosts while also trusting the fake.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertFiles:
    cert_path: str
    key_path: str
    bundle_path: str


_lock = threading.Lock()
_cached: CertFiles | None = None


def _build(directory: Path) -> CertFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "fakefal 127.0.0.1"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Promptreel tests (throw-away)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        # A self-signed certificate that is also its own trust anchor: marked as a CA with
        # the extensions OpenSSL's strict mode (VERIFY_X509_STRICT, default in Python 3.13)
        # asks for, so verification works on newer Pythons too.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path = directory / "fakefal-cert.pem"
    key_path = directory / "fakefal-key.pem"
    bundle_path = directory / "fakefal-ca-bundle.pem"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    bundle = cert_pem
    try:
        import certifi

        bundle += b"\n" + Path(certifi.where()).read_bytes()
    except Exception:  # noqa: S110 - certifi is optional; the bare cert still works
        pass
    bundle_path.write_bytes(bundle)
    return CertFiles(str(cert_path), str(key_path), str(bundle_path))


def get_cert_files() -> CertFiles:
    """The process-wide throw-away certificate (made on first call)."""
    global _cached
    with _lock:
        if _cached is None or not Path(_cached.cert_path).exists():
            directory = Path(tempfile.mkdtemp(prefix="fakefal-tls-"))
            atexit.register(shutil.rmtree, directory, True)
            _cached = _build(directory)
        return _cached


def make_self_signed_cert() -> tuple[str, str]:
    """(cert_path, key_path) of the process-wide throw-away certificate."""
    files = get_cert_files()
    return files.cert_path, files.key_path
