"""C2PA content credentials on stored videos, read back with c2pa-python itself."""

import datetime

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from generation import provenance
from generation.media import store_video
from tests.factories import GenerationFactory
from tests.support.media import stored_credentials

from .helpers import tiny_mp4

pytestmark = pytest.mark.django_db


@pytest.fixture
def generation(user):
    return GenerationFactory(user=user, endpoint_id="fal-ai/pika/v2.2/image-to-video")


def test_a_stored_video_carries_a_valid_manifest_naming_the_model(storage, generation):
    before = timezone.now()
    stored = store_video(generation, [tiny_mp4(frames=24)], declared_type="video/mp4")
    credentials = stored_credentials(stored.video_name)
    assert credentials is not None
    assert credentials.label == stored.manifest_label and credentials.label.startswith("urn:c2pa:")
    assert credentials.valid, credentials
    # The dev chain's CA is what our reader trusts: the chain checks out to the anchor.
    assert credentials.validation_state == "Trusted"
    assert credentials.ai_generated
    assert credentials.digital_source_type.endswith("/trainedAlgorithmicMedia")
    assert credentials.software_agent == "fal-ai/pika/v2.2/image-to-video"
    when = datetime.datetime.fromisoformat(credentials.when)
    assert before <= when <= timezone.now()
    assert "development" in credentials.issuer


def test_an_mp4_without_a_manifest_is_detected(tmp_path):
    path = tmp_path / "plain.mp4"
    path.write_bytes(tiny_mp4())
    assert provenance.read_credentials(str(path)) is None


def test_a_changed_video_no_longer_verifies(tmp_path):
    source, signed = tmp_path / "in.mp4", tmp_path / "signed.mp4"
    source.write_bytes(tiny_mp4(frames=24))
    provenance.sign_video(str(source), str(signed), endpoint_id="e", when=timezone.now())
    data = bytearray(signed.read_bytes())
    mdat = data.index(b"mdat") + 200  # inside the encoded frames, which the manifest hashes
    data[mdat] ^= 0xFF
    signed.write_bytes(bytes(data))
    credentials = provenance.read_credentials(str(signed))
    assert credentials is not None and not credentials.valid
    assert any("mismatch" in code for code in credentials.failures), credentials.failures


def test_a_configured_certificate_is_used(tmp_path, settings):
    """Production's path: C2PA_SIGNING_CERT / C2PA_SIGNING_KEY files (here a fresh chain)."""
    for name, value in provenance.write_throwaway_chain(tmp_path / "certs").items():
        setattr(settings, name, value)
    settings.C2PA_DEV_CERT_DIR = tmp_path / "never-made"
    source, signed = tmp_path / "in.mp4", tmp_path / "signed.mp4"
    source.write_bytes(tiny_mp4())
    label = provenance.sign_video(str(source), str(signed), endpoint_id="e", when=timezone.now())
    credentials = provenance.read_credentials(str(signed))
    assert credentials.label == label and credentials.validation_state == "Trusted"
    assert not (tmp_path / "never-made").exists()


def test_production_without_a_certificate_refuses(tmp_path, settings):
    settings.DEBUG = False
    settings.TESTING = False
    settings.C2PA_SIGNING_CERT = settings.C2PA_SIGNING_KEY = ""
    errors = provenance.check_signing_configured()
    assert [error.id for error in errors] == ["generation.E001"]
    assert all(error.level == checks.ERROR for error in errors)
    source = tmp_path / "in.mp4"
    source.write_bytes(tiny_mp4())
    with pytest.raises(ImproperlyConfigured, match="must be set in production"):
        provenance.sign_video(str(source), str(tmp_path / "out.mp4"), endpoint_id="e", when=None)
    settings.C2PA_SIGNING_CERT = str(source)  # one of the two is not enough either
    with pytest.raises(ImproperlyConfigured, match="both"):
        provenance.sign_video(str(source), str(tmp_path / "out.mp4"), endpoint_id="e", when=None)
