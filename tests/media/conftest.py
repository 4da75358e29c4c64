"""Fixtures for media tests: the same tests run on the filesystem and on a real S3 API.

The S3 API is moto in server mode on 127.0.0.1 (a random port), started once per test
session (per xdist worker); each test gets a fresh private bucket and STORAGES pointing at
it, with the same options production uses (config.settings.s3_storage_options).
"""

import uuid
from types import SimpleNamespace

import boto3
import pytest
from moto.server import ThreadedMotoServer

from config.settings import s3_storage_options
from generation import media
from tests.api.conftest import alice_key  # noqa: F401 - API clients of the media tests

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, settings):
    bucket = f"media-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, **KEYS)
    client.create_bucket(Bucket=bucket)
    options = s3_storage_options(
        bucket,
        endpoint_url=moto_endpoint,
        region_name=REGION,
        addressing_style="path",
        access_key=KEYS["aws_access_key_id"],
        secret_key=KEYS["aws_secret_access_key"],
    )
    # Django resets default_storage when STORAGES changes (django.test.signals).
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    return SimpleNamespace(bucket=bucket, client=client, endpoint=moto_endpoint)


@pytest.fixture(params=["filesystem", "s3"])
def storage(request):
    """Runs the test once on FileSystemStorage and once on S3 (moto)."""
    if request.param == "s3":
        return request.getfixturevalue("s3")
    return None


@pytest.fixture
def fetch_options(monkeypatch):
    """Lets media.fetch_image_url reach a local test server; returns the dict to fill."""
    options: dict = {}
    monkeypatch.setattr(media, "FETCH_OPTIONS", options)
    return options
