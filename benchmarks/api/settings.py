"""The product's settings with the benchmark's URLconf (adds the baseline endpoint)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.api.urls"
