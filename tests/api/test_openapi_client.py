"""The OpenAPI schema generates a working client (issue 19 item 1).

A third-party developer's route: fetch /api/schema/, generate a typed Python client with
openapi-python-client, and drive the API with it against a live server: create (JSON and
upload), poll, list with filters and cursor, cancel, account, models and estimate. The same
schema passes Spectral's `spectral:oas` ruleset with no error and no warning.
"""

import importlib
import io
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf

from api.models import Scope
from api.services import apikey_create
from tests.factories import GenerationFactory
from tests.support.media import png_bytes

VENV_BIN = str(Path(sys.executable).parent)
# Spectral comes from npm through npx, cached in the checkout (gitignored) after the first run.
NPM_CACHE = Path(settings.BASE_DIR) / ".npm-cache"


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory, django_db_blocker):
    """The schema as a client would download it (the same generator that serves it)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiYamlRenderer

    with django_db_blocker.unblock():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    path = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    path.write_bytes(OpenApiYamlRenderer().render(schema, renderer_context={}))
    return path


@pytest.fixture(scope="module")
def client_package(schema_file, tmp_path_factory):
    """openapi-python-client's output for the schema, importable as `promptreel_client`."""
    out = tmp_path_factory.mktemp("client")
    result = subprocess.run(
        [
            f"{VENV_BIN}/openapi-python-client",
            "generate",
            "--path",
            str(schema_file),
            "--output-path",
            str(out / "promptreel_client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # Its post-generation hooks run ruff, which is in the venv.
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Warning" not in output and "warning" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("promptreel_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == "promptreel_client"]:
            del sys.modules[name]


def test_the_generated_client_warns_of_nothing(client_package):
    assert hasattr(client_package, "AuthenticatedClient")
    # Every module imports: a body declared under several media types once generated code
    # that named a type it never imported (NameError on import of that operation).
    names = [
        info.name
        for info in pkgutil.walk_packages(client_package.__path__, f"{client_package.__name__}.")
    ]
    for name in names:
        importlib.import_module(name)
    assert f"{client_package.__name__}.api.creative.storyboards_create" in names


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_spectral_oas_ruleset_finds_no_error_and_no_warning(schema_file, tmp_path):
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n')
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            "npx",
            "--yes",
            "@stoplight/spectral-cli@6",
            "lint",
            str(schema_file),
            "--ruleset",
            str(ruleset),
            "--format",
            "json",
            "--output",
            str(report),
            "--fail-severity",
            "hint",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "npm_config_cache": str(NPM_CACHE)},
        check=False,
    )
    findings = json.loads(report.read_text()) if report.exists() else None
    assert findings == [], findings or result.stdout + result.stderr
    assert result.returncode == 0


def _cursor(link: str) -> str:
    return parse_qs(urlparse(link).query)["cursor"][0]


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_drives_the_api(
    client_package, live_server, user, settings, monkeypatch
):
    from promptreel_client import AuthenticatedClient
    from promptreel_client.api.account import account_retrieve
    from promptreel_client.api.catalogue import estimate_create, models_list
    from promptreel_client.api.generations import (
        generations_cancel,
        generations_create,
        generations_list,
        generations_retrieve,
    )
    from promptreel_client.models import (
        Account,
        Estimate,
        EstimateCreateRequest,
        Generation,
        GenerationCancel,
        GenerationCreateRequest,
        GenerationUploadRequest,
        ModelList,
        PaginatedGenerationList,
        Problem,
    )
    from promptreel_client.types import File

    # Queued and left there: this is about the contract, and a render run inline (django-q's
    # sync mode) takes seconds. A finished one comes from the factory.
    monkeypatch.setattr(Conf, "SYNC", False)
    finished = GenerationFactory(
        user=user,
        succeeded=True,
        finished_at=timezone.now(),
        created_at=timezone.now() - timedelta(hours=1),
    )
    settings.FREE_DAILY_PREVIEWS = 10
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    raw = apikey_create(user=user, name="generated", scopes=list(Scope.values))[1]
    api = AuthenticatedClient(base_url=live_server.url, token=raw, raise_on_unexpected_status=True)

    models = models_list.sync(client=api)
    assert isinstance(models, ModelList) and models.models
    text = next(m for m in models.models if m.kind == "text")
    assert text.fields.additional_properties["prompt"].required is True

    estimate = estimate_create.sync(
        client=api, body=EstimateCreateRequest(prompt="a fox", duration=5)
    )
    assert isinstance(estimate, Estimate) and estimate.refusal is None

    made = generations_create.sync(
        client=api,
        body=GenerationCreateRequest(prompt="a red fox in snow", duration=5, seed=2**32 - 1),
        idempotency_key="client-1",
    )
    assert isinstance(made, Generation), made
    assert made.seed == 2**32 - 1 and made.price_credits == estimate.credits_ == 0  # free preview

    upload = GenerationUploadRequest(
        prompt="it glows",
        image=File(payload=io.BytesIO(png_bytes()), file_name="in.png", mime_type="image/png"),
    )
    uploaded = generations_create.sync(client=api, body=upload)
    assert isinstance(uploaded, Generation), uploaded
    assert uploaded.endpoint == "fal-ai/pika/v2.2/image-to-video"
    assert uploaded.aspect_ratio is None  # image-to-video has none: null, not ""

    polled = generations_retrieve.sync(client=api, id=made.id)
    assert isinstance(polled, Generation) and polled.id == made.id
    assert polled.state.value == "queued" and polled.output is None and polled.error is None
    done = generations_retrieve.sync(client=api, id=finished.pk)
    assert done.output.video_url.startswith(live_server.url)
    assert done.output.expires_at > done.created_at and done.output.width == 1280
    assert done.timings.finished_at is not None

    canceled = generations_cancel.sync_detailed(client=api, id=uploaded.id)
    assert isinstance(canceled.parsed, GenerationCancel), canceled.content
    assert canceled.parsed.cancel.value == "canceled" and canceled.status_code == 200
    again = generations_cancel.sync_detailed(client=api, id=uploaded.id)
    assert again.status_code == 409 and again.parsed.state.value == "canceled"

    generations_create.sync(client=api, body=GenerationCreateRequest(prompt="third"))
    first = generations_list.sync(client=api, limit=3)
    assert isinstance(first, PaginatedGenerationList) and len(first.results) == 3
    assert first.previous is None and first.next_
    rest = generations_list.sync(client=api, limit=3, cursor=_cursor(first.next_))
    assert [g.id for g in rest.results] == [finished.id]  # the oldest, last
    assert rest.next_ is None and rest.previous
    queued = generations_list.sync(client=api, state="queued", created_after=made.created_at)
    assert [g.state.value for g in queued.results] == ["queued", "queued"]
    assert made.id in [g.id for g in queued.results]

    refused = generations_list.sync(client=api, limit=0)
    assert isinstance(refused, Problem) and refused.code.value == "invalid_input"

    account = account_retrieve.sync(client=api)
    assert isinstance(account, Account) and account.email == user.email
    assert account.key.prefix and account.usage_today.generations == 3
    assert account.usage_today.in_flight == 2  # the upload was canceled


@pytest.mark.django_db(transaction=True)
def test_a_generated_client_reads_batches_and_storyboards(
    client_package, live_server, user, settings, monkeypatch
):
    """The creative answers are typed too: a create with `variations` answers a batch (the
    create's 201 is one of Generation or BatchCreated), and the client parses each."""
    from promptreel_client import AuthenticatedClient
    from promptreel_client.api.creative import batches_retrieve, storyboards_create
    from promptreel_client.api.generations import generations_create
    from promptreel_client.models import (
        BatchCreated,
        BatchDetail,
        GenerationCreateRequest,
        StoryboardDraft,
        StoryboardRequest,
    )

    monkeypatch.setattr(Conf, "SYNC", False)  # queued and left there, as above
    settings.FREE_DAILY_PREVIEWS = 10
    settings.OPENAI_API_KEY = ""  # the storyboard splits the text offline
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    raw = apikey_create(user=user, name="generated", scopes=list(Scope.values))[1]
    api = AuthenticatedClient(base_url=live_server.url, token=raw, raise_on_unexpected_status=True)

    made = generations_create.sync(
        client=api, body=GenerationCreateRequest(prompt="a red fox in snow", variations=3)
    )
    assert isinstance(made, BatchCreated), made
    assert made.batch.kind.value == "variations" and len(made.generations) == 3
    assert len({g.seed for g in made.generations}) == 3 and made.refused == []

    detail = batches_retrieve.sync(client=api, id=made.batch.id)
    assert isinstance(detail, BatchDetail)
    assert [g.id for g in detail.generations] == [g.id for g in made.generations]
    assert all(g.kept is False and g.label for g in detail.generations)

    text = "A lighthouse at dusk. A storm rolls in. Morning comes calm."
    draft = storyboards_create.sync(client=api, body=StoryboardRequest(text=text, draft=True))
    assert isinstance(draft, StoryboardDraft), draft
    assert draft.source.value == "offline" and len(draft.scenes) == 3
    assert draft.price.count == 3 and len(draft.price.renders) == 3
    queued = storyboards_create.sync(client=api, body=StoryboardRequest(text=text))
    assert isinstance(queued, BatchCreated), queued
    assert queued.batch.kind.value == "storyboard" and len(queued.generations) == 3
