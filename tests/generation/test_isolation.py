"""Two users who must never see each other's data."""

import pytest
from django.urls import reverse

from generation.models import State
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_clip(user):
    return GenerationFactory(
        user=user, state=State.SUCCEEDED, output="outputs/a.mp4", poster="posters/a.jpg"
    )


@pytest.mark.parametrize("name", ["generation_detail", "generation_status"])
def test_other_user_gets_404_for_pages(bob_client, alices_clip, name):
    assert bob_client.get(reverse(name, args=[alices_clip.pk])).status_code == 404


@pytest.mark.parametrize("kind", ["video", "poster", "input"])
def test_other_user_gets_404_for_files(bob_client, alices_clip, kind):
    assert (
        bob_client.get(reverse("generation_media", args=[alices_clip.pk, kind])).status_code == 404
    )


def test_other_user_cannot_cancel(bob_client, user):
    queued = GenerationFactory(user=user)
    assert bob_client.post(reverse("generation_cancel", args=[queued.pk])).status_code == 404
    queued.refresh_from_db()
    assert queued.state == State.QUEUED


def test_gallery_lists_only_own_clips(alice_client, bob_client, user, other_user):
    GenerationFactory(user=user, prompt="alice's lighthouse")
    GenerationFactory(user=other_user, prompt="bob's volcano")
    alice_page = alice_client.get(reverse("gallery")).content.decode()
    bob_page = bob_client.get(reverse("gallery")).content.decode()
    assert "alice&#x27;s lighthouse" in alice_page and "volcano" not in alice_page
    assert "bob&#x27;s volcano" in bob_page and "lighthouse" not in bob_page


def test_anonymous_is_sent_to_sign_in(client, alices_clip):
    response = client.get(reverse("generation_detail", args=[alices_clip.pk]))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]
