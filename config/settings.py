"""The one settings module. Everything comes from the environment.

A missing key never stops start-up: each outside service falls back to its offline default
(SQLite, the ORM broker, the filesystem, the `local` renderer, built-in moderation rules,
billing off). `live_parts()` in generation/health.py reports which parts are real.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules or env_bool("TESTING")

DEBUG = env_bool("DEBUG", default=not env_str("SECRET_KEY"))
SECRET_KEY = env_str("SECRET_KEY") or "dev-only-insecure-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Where fal (and our API clients' webhooks) can reach us; without it we track by polling only.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/")
SITE_NAME = "Promptreel"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "csp",
    "django_q",
    "core",
    "accounts",
    "generation",
    "billing",
    "moderation",
    "creative",
    "api",
    "workflows",
    "studio",
    "restapi",
    "desk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "csp.middleware.CSPMiddleware",
]

if not DEBUG:
    # runserver serves static files in development; WhiteNoise does it in production.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "generation.context_processors.site",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Persistent connections in production; none in tests, where server threads that outlive
    # a test would otherwise keep the test database from being dropped.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=0 if TESTING else 60, conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or BASE_DIR / "db.sqlite3",
            # Kept open as on PostgreSQL: django-q's ORM broker and workers close "old"
            # connections before every call, which with 0 meant a new connection (and its
            # PRAGMAs) for every task and every broker poll.
            "CONN_MAX_AGE": 0 if TESTING else 60,
            # The web server, the worker and the tracker write to one file at once: WAL lets
            # readers go on during a write, IMMEDIATE avoids lock-upgrade deadlocks.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not :memory:, so that a real qcluster process in the tests shares it; one
            # per test process, so that test runs side by side never share a database.
            "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"promptreel-{os.getpid()}.db")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit counters etc. must be shared by every process) ----------------------------
REDIS_URL = env_str("REDIS_URL")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "promptreel")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Each test process gets its own keys, so runs never see each other's counters.
            "KEY_PREFIX": CACHE_KEY_PREFIX
            + (f"-test-{os.getpid()}-{time.time_ns()}" if TESTING else ""),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "promptreel_cache",
        }
    }

# --- Task queue (django-q2) -------------------------------------------------------------------
Q_CLUSTER = {
    "name": env_str("Q_QUEUE_NAME", "promptreel"),
    "workers": env_int("Q_WORKERS", 2),
    # A task that runs longer than `timeout` is killed; it is handed out again only after
    # `retry`, so retry must be longer than timeout or a slow task would run twice at once.
    "timeout": env_int("Q_TIMEOUT", 300),
    "retry": env_int("Q_TIMEOUT", 300) + 60,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    # Successful tasks are not stored (-1): the product never reads their results, and
    # django-q's pruning (save_limit > 0) locks and loads every stored success on each task,
    # 1 in 10 of the worker cluster's CPU at 1000 in flight (benchmarks/README.md). Failures
    # are always stored (admin: Failed tasks).
    "save_limit": -1,
    "poll": 0.1,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
# SIGTERM (issue 15): a running task gets this many seconds to finish, then it is interrupted
# and handed back (core/shutdown.py); qcluster is gone well within 10 s. core's qcluster
# command must come before django_q's, since the command of the earlier app wins.
Q_STOP_GRACE_SECONDS = env_float("Q_STOP_GRACE_SECONDS", 5.0)
if "core" in INSTALLED_APPS:
    INSTALLED_APPS.remove("core")
INSTALLED_APPS.insert(INSTALLED_APPS.index("django_q"), "core")

# --- Auth (django-allauth) --------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Promptreel] "
# Audits staff sign-ins and lockouts; the admin signs in through allauth (accounts/views.py).
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "generate"
LOGOUT_REDIRECT_URL = "home"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Promptreel <noreply@promptreel.localhost>")

# --- Static and media files -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")
MEDIA_URL = "/media/"  # never routed: files go out through signed, owner-checked views

# Media links (S3 presigned URLs, or our signed view on the filesystem) live this many seconds.
SIGNED_URL_TTL = env_int("SIGNED_URL_TTL", 300)
# How long an image URL download may take in all, redirects included.
IMAGE_FETCH_TIMEOUT = env_float("IMAGE_FETCH_TIMEOUT", 10.0)
# Retention (generation/retention.py, run hourly): stored files no row refers to (deleted
# generations, failed uploads) go after this many hours; input images of generations that
# ended without a video (failed, canceled, blocked) after this many days (0 keeps them); the
# offline renderer's job folders after a day.
MEDIA_ORPHAN_RETENTION_HOURS = env_int("MEDIA_ORPHAN_RETENTION_HOURS", 24)
MEDIA_ABANDONED_INPUT_DAYS = env_int("MEDIA_ABANDONED_INPUT_DAYS", 30)
LOCAL_RENDER_RETENTION_HOURS = env_int("LOCAL_RENDER_RETENTION_HOURS", 24)


def s3_storage_options(bucket_name: str, **overrides) -> dict:
    """django-storages S3Storage options for our media bucket (also used by tests/benchmarks).

    Private objects (no public ACL, presigned GET URLs), never overwritten, streamed uploads in
    bounded memory. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the
    usual boto3 sources: profile, instance role).
    """
    from boto3.s3.transfer import TransferConfig

    # Uploads from a file object read each multipart part into memory: 8 MiB parts, at most
    # two in flight (boto3's defaults allow 10 × 8 MiB). Videos go up from a path instead
    # (generation.media.save_file), which reads parts from disk as they are sent.
    transfer = TransferConfig(
        multipart_threshold=8 * 2**20, multipart_chunksize=8 * 2**20, max_concurrency=2
    )
    transfer.max_in_memory_upload_chunks = 2
    options = {
        "bucket_name": bucket_name,
        "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,  # MinIO, R2, B2, Ceph, moto…
        "region_name": env_str("AWS_S3_REGION_NAME") or None,
        # "path" for most self-hosted stores (MinIO); unset lets botocore choose.
        "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE") or None,
        "signature_version": env_str("AWS_S3_SIGNATURE_VERSION") or "s3v4",
        "location": env_str("AWS_LOCATION"),  # optional key prefix inside the bucket
        # Buckets with ACLs disabled (AWS's default now) are private anyway: set it empty there.
        "default_acl": env_str("AWS_DEFAULT_ACL", "private") or None,
        "file_overwrite": False,
        "querystring_auth": True,
        "querystring_expire": SIGNED_URL_TTL,
        # Files read back through storage.open() spill to disk past 5 MiB instead of RAM.
        "max_memory_size": 5 * 2**20,
        "transfer_config": transfer,
    }
    return {**options, **overrides}


AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": s3_storage_options(AWS_STORAGE_BUCKET_NAME),
    }
else:
    default_storage = {
        # No explicit location: it follows MEDIA_ROOT, also when tests override it.
        "BACKEND": "django.core.files.storage.FileSystemStorage",
    }
STORAGES = {
    "default": default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Video backends ---------------------------------------------------------------------------
FAL_KEY = env_str("FAL_KEY")
VIDEO_BACKEND = env_str("VIDEO_BACKEND") or ("fal" if FAL_KEY else "local")
if VIDEO_BACKEND not in {"local", "fal"}:
    raise ImproperlyConfigured(f"VIDEO_BACKEND must be 'local' or 'fal', not {VIDEO_BACKEND!r}")
# fal's current JWKS address (shared/fal-protocol.md §3; rest.alpha.fal.ai is out of date).
FAL_WEBHOOK_JWKS_URL = env_str("FAL_WEBHOOK_JWKS_URL", "https://rest.fal.ai/.well-known/jwks.json")
# What fal keeps (generation/backends/fal.py privacy_headers): False sends X-Fal-Store-IO: 0
# (no request history at fal); generated media is deleted from fal's CDN after this many
# seconds (0: fal's default), long after finalize has copied it.
FAL_STORE_IO = env_bool("FAL_STORE_IO", False)
FAL_MEDIA_EXPIRATION_SECONDS = env_int("FAL_MEDIA_EXPIRATION_SECONDS", 3600)
# fal ends a request that has not started within this many seconds itself (X-Fal-Request-
# Timeout on every submit; a 504 that is not billed). It bounds how long a submit whose answer
# was lost can still turn into a paid job: the reconcile deadline below builds on it.
FAL_START_TIMEOUT_SECONDS = env_int("FAL_START_TIMEOUT_SECONDS", 3 * 60 * 60)
# A submit whose answer was lost (timeout or reset after the POST may have reached fal) waits
# this long for the webhook that names its attempt before it is sent again: the start timeout,
# plus the longest run (the in-progress deadline, 1 h), plus fal's first webhook retries.
FAL_SUBMIT_RECONCILE_SECONDS = env_int(
    "FAL_SUBMIT_RECONCILE_SECONDS", FAL_START_TIMEOUT_SECONDS + 60 * 60 + 15 * 60
)
# A row still submitting after this long lost its worker (a submit call gives up after 30 s,
# generation/backends/fal.py CALL_TIMEOUT): the reaper reconciles it (workflows/tracking.py).
SUBMIT_STUCK_SECONDS = env_int("SUBMIT_STUCK_SECONDS", 5 * 60)
# Only for tests and local fakes: let result downloads reach loopback/private addresses.
FAL_ALLOW_PRIVATE_RESULT_HOSTS = env_bool("FAL_ALLOW_PRIVATE_RESULT_HOSTS", False)
# Simulated provider queue for the offline renderer, so that progress is visible.
LOCAL_QUEUE_SECONDS = env_float("LOCAL_QUEUE_SECONDS", 2.0)
LOCAL_RENDER_DIR = Path(env_str("LOCAL_RENDER_DIR") or MEDIA_ROOT / "local-provider")
# How often the tracker polls a job that has just been submitted, and the cap of its back-off.
TRACK_POLL_MIN_SECONDS = env_float("TRACK_POLL_MIN_SECONDS", 0.5)
TRACK_POLL_MAX_SECONDS = env_float("TRACK_POLL_MAX_SECONDS", 5.0)
# Once a job is as old as recent jobs of its kind ran (generation.polling), poll this often.
TRACK_POLL_DUE_SECONDS = env_float("TRACK_POLL_DUE_SECONDS", 2.0)
# Without a webhook, a job is polled at least this often while few are in flight (0: off), and
# all jobs together at most about TRACK_POLL_BUDGET_PER_SECOND times a second on that account.
TRACK_POLL_LONE_SECONDS = env_float("TRACK_POLL_LONE_SECONDS", 0.75)
TRACK_POLL_BUDGET_PER_SECOND = env_float("TRACK_POLL_BUDGET_PER_SECOND", 20.0)
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 4)
# Provider circuit (workflows.circuit): a locked fal account opens it at once, this many
# infrastructure failures within the window open it too; while open, queued jobs wait and one
# probe submission goes every PROVIDER_PROBE_SECONDS. A job queued longer than
# PROVIDER_QUEUE_TIMEOUT_SECONDS is failed and its credits released.
PROVIDER_CIRCUIT_FAILURES = env_int("PROVIDER_CIRCUIT_FAILURES", 5)
PROVIDER_CIRCUIT_WINDOW_SECONDS = env_int("PROVIDER_CIRCUIT_WINDOW_SECONDS", 60)
PROVIDER_PROBE_SECONDS = env_int("PROVIDER_PROBE_SECONDS", 60)
PROVIDER_QUEUE_TIMEOUT_SECONDS = env_int("PROVIDER_QUEUE_TIMEOUT_SECONDS", 3600)
# Who hears about provider outages (comma-separated); empty: every active superuser.
STAFF_ALERT_EMAILS = [e.strip() for e in env_str("STAFF_ALERT_EMAILS", "").split(",") if e.strip()]
# fal backend in flight (issue 3): with a webhook coming, polls only refresh the queue position
# and catch lost webhooks, so they may be rarer.
TRACK_POLL_WITH_WEBHOOK_SECONDS = env_float("TRACK_POLL_WITH_WEBHOOK_SECONDS", 15.0)

# --- Catalogue, prices and inputs -------------------------------------------------------------
CREDIT_MARKUP = env_str("CREDIT_MARKUP", "2.0")
CREDIT_VALUE_USD = env_str("CREDIT_VALUE_USD", "0.01")
# JSON object overriding catalogue prices, by endpoint id: {"720p": {"5": "0.20", ...}} prices
# whole videos ("*" = any), {"per_second": {"720p": "0.04"}} seconds (generation/catalogue.py).
FAL_PRICE_OVERRIDES = env_str("FAL_PRICE_OVERRIDES")
PROMPT_MAX_CHARS = env_int("PROMPT_MAX_CHARS", 1000)
IMAGE_MAX_BYTES = env_int("IMAGE_MAX_BYTES", 10 * 1024 * 1024)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 40_000_000)
VIDEO_MAX_BYTES = env_int("VIDEO_MAX_BYTES", 200 * 1024 * 1024)
# Input videos (Pikadditions, Pikaswaps): largest upload or download, longest clip, and the
# time a download by link may take in all.
INPUT_VIDEO_MAX_BYTES = env_int("INPUT_VIDEO_MAX_BYTES", 50 * 1024 * 1024)
INPUT_VIDEO_MAX_SECONDS = env_int("INPUT_VIDEO_MAX_SECONDS", 30)
INPUT_VIDEO_FETCH_TIMEOUT = env_float("INPUT_VIDEO_FETCH_TIMEOUT", 60.0)

# --- Content credentials (C2PA) on every stored video: generation/provenance.py ---------------
# Paths to the PEM certificate chain (leaf first) and its private key; required in production.
C2PA_SIGNING_CERT = env_str("C2PA_SIGNING_CERT")
C2PA_SIGNING_KEY = env_str("C2PA_SIGNING_KEY")
# Optional RFC 3161 time-stamp authority, so a signature outlives its certificate.
C2PA_TSA_URL = env_str("C2PA_TSA_URL")
# Without the two paths (DEBUG and tests only): a throw-away chain made here at first use.
C2PA_DEV_CERT_DIR = Path(env_str("C2PA_DEV_CERT_DIR") or BASE_DIR / ".c2pa-dev")

# --- Outside services that switch on real parts -----------------------------------------------
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")

# --- Billing and plans (docs/architecture.md "Money"; plans and packs in billing/plans.py) --------
# Billing is live when both Stripe keys are set; otherwise staff grant credits in admin.
BILLING_ENABLED = bool(STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)
# Only for tests and stripe-mock style fakes: where stripe-python sends API calls.
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# Stripe Price ids of the subscriptions and one-time credit packs (a missing one is not sold).
STRIPE_PRICE_CREATOR = env_str("STRIPE_PRICE_CREATOR")
STRIPE_PRICE_STUDIO = env_str("STRIPE_PRICE_STUDIO")
STRIPE_PRICE_PACK_SMALL = env_str("STRIPE_PRICE_PACK_SMALL")
STRIPE_PRICE_PACK_MEDIUM = env_str("STRIPE_PRICE_PACK_MEDIUM")
STRIPE_PRICE_PACK_LARGE = env_str("STRIPE_PRICE_PACK_LARGE")
# Webhooks older than this, or dated more than STRIPE_WEBHOOK_FUTURE_SKEW s ahead, are refused.
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)
STRIPE_WEBHOOK_FUTURE_SKEW = env_int("STRIPE_WEBHOOK_FUTURE_SKEW", 60)
# Free preview renders (720p, up to 5 s, no credits) per user per UTC day on the Free plan.
FREE_DAILY_PREVIEWS = env_int("FREE_DAILY_PREVIEWS", 3)
# JSON {"creator": {"monthly_credits": 2000, "max_in_flight": 5}} / {"small": {"credits": 600}}.
BILLING_PLAN_OVERRIDES = env_str("BILLING_PLAN_OVERRIDES")
BILLING_PACK_OVERRIDES = env_str("BILLING_PACK_OVERRIDES")
# Purchased credits the demo account made by `./dev.sh run` starts with.
DEMO_CREDITS = env_int("DEMO_CREDITS", 500)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("billing.context_processors.billing")

# --- Moderation (README "Moderation") -------------------------------------------------------------
# The policy as data: categories, decisions, explanations and the built-in rules.
MODERATION_POLICY_FILE = Path(
    env_str("MODERATION_POLICY_FILE") or BASE_DIR / "moderation" / "policy.json"
)
# OpenAI moderation runs when OPENAI_API_KEY is set; a timeout or error holds for review.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")  # only for tests / proxies; empty = OpenAI
OPENAI_MODERATION_MODEL = env_str("OPENAI_MODERATION_MODEL", "omni-moderation-latest")
OPENAI_MODERATION_TIMEOUT = env_float("OPENAI_MODERATION_TIMEOUT", 5.0)
# Storyboards (creative/storyboard.py): with OPENAI_API_KEY a chat model writes one prompt per
# scene; without it, or when it fails, the text is split offline.
OPENAI_STORYBOARD_MODEL = env_str("OPENAI_STORYBOARD_MODEL", "gpt-4o-mini")
OPENAI_STORYBOARD_TIMEOUT = env_float("OPENAI_STORYBOARD_TIMEOUT", 20.0)
# Confirmed violations (moderator rejections, take-downs) that suspend an account; 0 = never.
AUTO_SUSPEND_AFTER_VIOLATIONS = env_int("AUTO_SUSPEND_AFTER_VIOLATIONS", 3)
# Days the prompts of held / blocked requests are kept on their moderation case; 0 = forever.
MODERATION_PROMPT_RETENTION_DAYS = env_int("MODERATION_PROMPT_RETENTION_DAYS", 90)
# Sign-up requires accepting the content and acceptable-use policies.
ACCOUNT_SIGNUP_FORM_CLASS = "moderation.forms.SignupForm"

# --- Demo account made by the run command -----------------------------------------------------
DEMO_EMAIL = env_str("DEMO_EMAIL", "demo@promptreel.localhost")
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "promptreel-demo")
DEMO_STAFF_EMAIL = env_str("DEMO_STAFF_EMAIL", "staff@promptreel.localhost")

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "restapi.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # the site's own scripts (CSRF)
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "restapi.permissions.HasScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["restapi.throttling.ApiRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "restapi.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "restapi.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Promptreel API",
    "DESCRIPTION": "Prompts and images in, short videos out. "
    "Authenticate with `Authorization: Bearer prk_…`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: the webhook payload goes in the document's `webhooks` section (restapi/schema.py).
    "OAS_VERSION": "3.1.0",
    "CONTACT": {
        "name": "Promptreel support",
        "email": env_str("SUPPORT_EMAIL", "support@promptreel.localhost"),
    },
    "SERVERS": [
        {"url": PUBLIC_BASE_URL or "http://127.0.0.1:8000", "description": "this installation"}
    ],
    "TAGS": [
        {"name": "generations", "description": "Create, read, list and cancel videos"},
        {"name": "catalogue", "description": "Models, prices and estimates"},
        {"name": "account", "description": "Balance, plan and limits"},
        {"name": "webhooks", "description": "Deliveries of your webhooks, test events, redelivery"},
        {"name": "creative", "description": "Prompt templates, variations and storyboards"},
    ],
    "WEBHOOKS": ["restapi.schema.GENERATION_EVENT"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "restapi.schema.add_problem_responses",
    ],
}


# --- Content-Security-Policy (django-csp 4) ----------------------------------------------------
# No page needs inline script or style: scripts and styles are files under static/ and the API
# docs load theirs through SpectacularSwaggerSplitView. Media may come from the bucket (S3
# presigned URLs), and checkout/portal forms redirect to Stripe.
def _media_origins() -> list[str]:
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    endpoint = env_str("AWS_S3_ENDPOINT_URL").rstrip("/")
    if not endpoint:
        return ["https://*.amazonaws.com"]
    scheme, _, host = endpoint.partition("://")
    return [endpoint, f"{scheme}://*.{host}"]  # path- and virtual-host-style addressing


CSP_MEDIA_ORIGINS = env_list("CSP_MEDIA_ORIGINS") or _media_origins()
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *CSP_MEDIA_ORIGINS],
        "media-src": ["'self'", "blob:", *CSP_MEDIA_ORIGINS],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://checkout.stripe.com", "https://billing.stripe.com"],
    },
}
# Swagger UI's and Redoc's files come from drf-spectacular-sidecar (in INSTALLED_APPS, set in
# SPECTACULAR_SETTINGS) and are served as our own static files: no CDN, no "@latest".
# /api/docs/ uses the split view, whose init script is a separate file rather than inline.
# How many proxies in front of us append to X-Forwarded-For: client IPs for per-IP limits
# and the audit log come from there; 0 trusts no such header (direct connections).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
API_REQUESTS_PER_MINUTE = env_int("API_REQUESTS_PER_MINUTE", 120)
API_ANONYMOUS_REQUESTS_PER_MINUTE = env_int("API_ANONYMOUS_REQUESTS_PER_MINUTE", 30)
# Webhook targets on this machine (http or https, any port) for local development. Honoured
# only with DEBUG (api.webhooks.loopback_allowed): production never sends to loopback.
WEBHOOK_ALLOW_LOOPBACK = DEBUG and env_bool("WEBHOOK_ALLOW_LOOPBACK", False)
# `Prefer: wait=N` and event streams hold a web worker: at most this long, this many at once
# per key (restapi/waiting.py). Size web workers for it: waits × active keys.
API_MAX_WAIT_SECONDS = min(env_int("API_MAX_WAIT_SECONDS", 60), 60)
API_MAX_WAITS_PER_KEY = env_int("API_MAX_WAITS_PER_KEY", 2)
# More generations than this in one minute flag the account for moderator review.
BURST_FLAG_PER_MINUTE = env_int("BURST_FLAG_PER_MINUTE", 30)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # X-Forwarded-Proto tells the scheme only when a proxy we trust sets it: with none
    # configured anyone could send "https" (issue 14). Same switch as for client IPs.
    if TRUSTED_PROXY_COUNT > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # On by default, as Django's deployment checklist asks (security.W021); the list itself
    # only takes the domain once someone submits it. An explicit "off" is a decision, so the
    # warning is silenced then rather than failing `check --deploy --fail-level WARNING`.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Health check -----------------------------------------------------------------------------
# /healthz answers "ok" or "fail" to anyone; the checks and which parts are live only to staff
# or to `Authorization: Bearer <HEALTHZ_TOKEN>` (a monitor). Empty: staff only.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")

# --- Observability (issue 15): request ids, JSON logs, /metrics, Sentry ----------------------
# Every line carries the request id (X-Request-ID) or the job's generation id
# (core.observability); LOG_FORMAT=json writes one JSON object a line for log shippers.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.observability.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "core.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
MIDDLEWARE.insert(0, "core.observability.RequestMiddleware")
# /metrics (Prometheus) answers only `Authorization: Bearer <METRICS_TOKEN>`; unset: off (404).
# Under gunicorn set PROMETHEUS_MULTIPROC_DIR (an empty folder) to add up all its processes.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Staff dashboard (/admin/dashboard/, desk.rollup): each run of the rollup recomputes the days
# of the last DASHBOARD_ROLLUP_HOURS (rows still moving) and those of older rows that ended since.
DASHBOARD_ROLLUP_HOURS = env_int("DASHBOARD_ROLLUP_HOURS", 48)
# Staff alerts (desk.alerts, checked every minute): over the generations that ended in the last
# ALERT_WINDOW_MINUTES, when at least ALERT_MIN_SAMPLES did, an email when the failure rate
# (failed ÷ (ready + failed)) exceeds ALERT_FAILURE_RATE or a stage's p95 exceeds its line in
# seconds; one more when it falls back. 0 turns a line off.
ALERT_WINDOW_MINUTES = env_int("ALERT_WINDOW_MINUTES", 30)
ALERT_MIN_SAMPLES = env_int("ALERT_MIN_SAMPLES", 20)
ALERT_FAILURE_RATE = env_float("ALERT_FAILURE_RATE", 0.2)
ALERT_P95_SECONDS = {
    "submit": env_float("ALERT_P95_SUBMIT_SECONDS", 120.0),
    "queue": env_float("ALERT_P95_QUEUE_SECONDS", 900.0),
    "run": env_float("ALERT_P95_RUN_SECONDS", 900.0),
    "finalize": env_float("ALERT_P95_FINALIZE_SECONDS", 120.0),
    "total": env_float("ALERT_P95_TOTAL_SECONDS", 1800.0),
}
# Errors to Sentry when SENTRY_DSN is set (no personal data sent: send_default_pii off).
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
    )
