"""C2PA content credentials on every stored MP4: AI-generated, by which model, when.

store_video() (generation.media) calls sign_video() on its local copy before saving it, so
no MP4 reaches storage without a signed manifest. The manifest holds one c2pa.actions.v2
assertion: a c2pa.created action whose digitalSourceType is IPTC's trainedAlgorithmicMedia,
whose softwareAgent is the endpoint id (the model) and whose `when` is the signing time.
The claim signature is ES256 over a certificate chain (leaf first, then its CA).

Certificates:
* Production: C2PA_SIGNING_CERT (PEM chain, leaf first) and C2PA_SIGNING_KEY (PEM private key)
  are paths; with DEBUG off and no test run, missing ones fail Django's system checks
  (generation.E001), so `migrate` and the server refuse to start.
* DEBUG and tests: a throw-away CA and signing certificate are made at first use into
  C2PA_DEV_CERT_DIR. C2PA (c2pa-rs) refuses a self-signed signing certificate and wants the
  leaf to be a non-CA with the digitalSignature key usage and an allowed extended key usage
  (emailProtection here; anyExtendedKeyUsage is refused), so the dev chain is CA + leaf.

read_credentials() reads a file back with the same library (sign_video checks its own output
with it, and so do the tests); it returns None for a file without a manifest.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

# IPTC's code for media made by a trained model (what C2PA calls AI-generated).
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
DEV_SIGNER_FILE = "dev-signer.pem"
# Reader states that mean the signature and the hashes over the file check out. "Trusted"
# additionally means the chain ends in a configured trust anchor.
VALID_STATES = frozenset({"Valid", "Trusted"})


class SigningFailed(Exception):
    """The library could not sign this file (the message says why)."""


@dataclass(frozen=True)
class Credentials:
    """What a file's active C2PA manifest says, as read back by c2pa-python."""

    label: str
    validation_state: str  # "Invalid", "Valid" or "Trusted"
    failures: tuple[str, ...]  # validation failure codes, e.g. "assertion.bmffHash.mismatch"
    digital_source_type: str
    software_agent: str  # the model (endpoint id)
    when: str
    issuer: str

    @property
    def valid(self) -> bool:
        return self.validation_state in VALID_STATES and not self.failures

    @property
    def ai_generated(self) -> bool:
        return self.digital_source_type == TRAINED_ALGORITHMIC_MEDIA


@dataclass(frozen=True)
class _SigningMaterial:
    chain_pem: bytes  # leaf first
    key_pem: bytes
    anchor_pem: bytes  # the last certificate of the chain: what our own reads trust


def manifest_definition(*, endpoint_id: str, when: datetime.datetime) -> dict:
    return {
        "claim_generator_info": [{"name": settings.SITE_NAME, "version": "1"}],
        "title": "video.mp4",
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": endpoint_id},
                            "when": when.isoformat(),
                        }
                    ]
                },
            }
        ],
    }


def sign_video(src: str, dst: str, *, endpoint_id: str, when: datetime.datetime) -> str:
    """Write src to dst with a signed manifest embedded; returns the manifest's label.

    Streams file to file (the library reads and hashes the boxes, it does not load the video
    whole). Raises SigningFailed if the library refuses the file, ImproperlyConfigured if the
    certificate or key cannot be used.
    """
    material = _material()
    signer = _signer(material, settings.C2PA_TSA_URL or None)
    # Our own label for the manifest, so that it need not be read back to be known.
    label = f"urn:c2pa:{uuid.uuid4()}"
    definition = {**manifest_definition(endpoint_id=endpoint_id, when=when), "label": label}
    try:
        with (
            _signing,
            c2pa.Builder(definition, context=_signing_context()) as builder,
            open(src, "rb") as source,
            open(dst, "w+b") as target,
        ):
            builder.sign(signer, "video/mp4", source, target)
    except c2pa.C2paError as exc:
        raise SigningFailed(str(exc)) from exc
    if not _chain_checked.is_set():
        # The library raises on what it cannot sign. Reading the copy back (it hashes the whole
        # file again: ~40 % of the signing cost) proves that the configured chain validates,
        # which does not change while the process runs: once per process is enough.
        credentials = read_credentials(dst)
        if credentials is None or not credentials.valid or credentials.label != label:
            raise SigningFailed(f"the signed copy does not verify: {credentials}")
        _chain_checked.set()
    return label


_chain_checked = threading.Event()


# One signer per process, used by one signing at a time (the library's signer object is not
# documented as safe to share between threads; a worker process signs one clip at a time).
_signing = threading.Lock()


@lru_cache(maxsize=1)
def _signing_context() -> c2pa.Context:
    """The library's settings for signing, once per process. By default it validates every copy
    it has just signed (another pass over the file and the chain: 0.9 of 2.6 CPU ms for a
    short clip, benchmarks/README.md); the read-back above already proves the chain once per
    process, and what the library cannot sign it refuses with an error."""
    return c2pa.Context.from_dict({"verify": {"verify_after_sign": False}})


@lru_cache(maxsize=4)
def _signer(material: _SigningMaterial, tsa_url: str | None) -> c2pa.Signer:
    """The signer for this chain and key, built once per process rather than once per clip
    (it parses the chain and the key each time). Kept open for the process's life."""
    try:
        return c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(
                c2pa.C2paSigningAlg.ES256, material.chain_pem, material.key_pem, tsa_url
            )
        )
    except c2pa.C2paError as exc:
        raise ImproperlyConfigured(
            f"The C2PA signing certificate or key is unusable: {exc}"
        ) from exc


def read_credentials(path: str) -> Credentials | None:
    """The active manifest of the MP4 at path, validated; None when it carries none."""
    context = c2pa.Context.from_dict(
        {"trust": {"trust_anchors": _material().anchor_pem.decode("ascii")}}
    )
    try:
        with open(path, "rb") as stream, c2pa.Reader("video/mp4", stream, context=context) as r:
            store = json.loads(r.json())
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError as exc:  # a manifest is there but cannot even be parsed
        return Credentials("", "Invalid", (f"unreadable: {exc}",), "", "", "", "")
    label = store.get("active_manifest") or ""
    manifest = store.get("manifests", {}).get(label)
    if manifest is None:
        return None
    action = _created_action(manifest)
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    return Credentials(
        label=label,
        validation_state=store.get("validation_state", ""),
        failures=tuple(item.get("code", "") for item in results.get("failure", [])),
        digital_source_type=action.get("digitalSourceType", ""),
        software_agent=(action.get("softwareAgent") or {}).get("name", ""),
        when=action.get("when", ""),
        issuer=(manifest.get("signature_info") or {}).get("issuer", ""),
    )


def _created_action(manifest: dict) -> dict:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    return action
    return {}


# --- Certificates -------------------------------------------------------------------------------
def _material() -> _SigningMaterial:
    cert, key = settings.C2PA_SIGNING_CERT, settings.C2PA_SIGNING_KEY
    if cert and key:
        return _configured(str(cert), str(key))
    if cert or key:
        raise ImproperlyConfigured("Set both C2PA_SIGNING_CERT and C2PA_SIGNING_KEY, or neither.")
    if not (settings.DEBUG or settings.TESTING):
        raise ImproperlyConfigured(
            "C2PA_SIGNING_CERT and C2PA_SIGNING_KEY must be set in production."
        )
    return _dev(str(settings.C2PA_DEV_CERT_DIR))


@lru_cache(maxsize=4)
def _configured(cert_path: str, key_path: str) -> _SigningMaterial:
    try:
        chain = Path(cert_path).read_bytes()
        key = Path(key_path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read the C2PA certificate or key: {exc}") from exc
    certificates = x509.load_pem_x509_certificates(chain)
    return _SigningMaterial(
        chain_pem=chain,
        key_pem=key,
        anchor_pem=certificates[-1].public_bytes(serialization.Encoding.PEM),
    )


@lru_cache(maxsize=4)
def _dev(folder: str) -> _SigningMaterial:
    """The throw-away dev chain in folder, made on first use.

    Key, leaf and CA live in one file written by rename, so processes that race to make it
    (test workers, runserver and a worker) never read a key with another run's certificate.
    """
    path = Path(folder) / DEV_SIGNER_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".signer-")
        with os.fdopen(handle, "wb") as out:
            out.write(_make_dev_chain())
        os.replace(scratch, path)
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    certificates = x509.load_pem_x509_certificates(data)
    pem = serialization.Encoding.PEM
    return _SigningMaterial(
        chain_pem=b"".join(certificate.public_bytes(pem) for certificate in certificates),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        anchor_pem=certificates[-1].public_bytes(pem),
    )


def write_throwaway_chain(folder: Path) -> dict[str, str]:
    """A fresh throw-away chain as the two files production configures: the settings that
    point at them. For benchmarks and tests that run with DEBUG off."""
    pem = _make_dev_chain()
    marker = b"-----END PRIVATE KEY-----\n"
    key_end = pem.index(marker) + len(marker)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c2pa-chain.pem").write_bytes(pem[key_end:])
    (folder / "c2pa-key.pem").write_bytes(pem[:key_end])
    return {
        "C2PA_SIGNING_CERT": str(folder / "c2pa-chain.pem"),
        "C2PA_SIGNING_KEY": str(folder / "c2pa-key.pem"),
    }


def _make_dev_chain() -> bytes:
    """PEM: the leaf's private key, the leaf certificate, the CA certificate (P-256, SHA-256)."""
    now = datetime.datetime.now(datetime.UTC)
    site = settings.SITE_NAME if settings.configured else "Promptreel"  # benchmark parents

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{site} development"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def usage(*, signing: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=signing,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=not signing,
            crl_sign=not signing,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Throw-away C2PA CA (not for production)"))
        .issuer_name(name("Throw-away C2PA CA (not for production)"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("Throw-away C2PA signer (not for production)"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(signing=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + leaf.public_bytes(pem)
        + ca.public_bytes(pem)
    )


@checks.register(checks.Tags.security)
def check_signing_configured(app_configs=None, **kwargs):
    """Production signs with a configured certificate, never the throw-away one."""
    if settings.DEBUG or settings.TESTING:
        return []
    if settings.C2PA_SIGNING_CERT and settings.C2PA_SIGNING_KEY:
        return []
    return [
        checks.Error(
            "C2PA_SIGNING_CERT and C2PA_SIGNING_KEY are not set: stored videos would be signed "
            "with a throw-away development certificate.",
            hint="Point both settings at a PEM certificate chain (leaf first) and its key.",
            id="generation.E001",
        )
    ]
