"""Settings, all read from the environment through django-environ.

With nothing set, the service runs on an embedded default that needs no server:
a SQLite file and kombu's filesystem broker, both under ``DATAFI_VAR_DIR`` (``var/``).
"""

import base64
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from config import control_plane, observability

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env.str("DATAFI_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _local_secret(name: str, generate=lambda: secrets.token_urlsafe(50)) -> str:
    """A random secret kept in ``VAR_DIR`` so the embedded default needs no configuration."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret("secret_key")
# Fernet keys for secrets stored in the database (SMTP password, webhook secrets), comma-separated:
# the first encrypts, all decrypt; add a new key first, run rotate_encryption_keys, drop the old.
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY", default=[]) or [
    _local_secret("field_encryption_key",
                  lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Behind a TLS-terminating proxy (README "Deploying behind TLS") -----------------------
# The proxy sets X-Forwarded-Proto: https (overwriting a client's). Plain HTTP is redirected,
# HSTS is sent, cookies are HTTPS-only. Off by default: bin/serve is plain HTTP on 127.0.0.1.
DATAFI_HTTPS = env.bool("DATAFI_HTTPS", default=False)
if DATAFI_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env.int("DATAFI_HSTS_SECONDS", default=31536000)  # a year
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DATAFI_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DATAFI_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- What a page may load: Content-Security-Policy, Permissions-Policy (config/security.py)
# On every response, shaped like Django 6.0's SECURE_CSP. Scripts and styles are files from
# /static/ (none inline: app, admin, /api/docs/), images also data: (Swagger UI's icons).
# Violations go to CSP_REPORT_PATH (logged) by report-uri, which Chromium, Firefox and
# Safari send at once; not report-to too, since a browser with it then ignores report-uri
# and headless Chromium never delivered a report-to report in the tests.
CSP_REPORT_PATH = "/csp-report/"
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
    **({"upgrade-insecure-requests": []} if DATAFI_HTTPS else {}),
    "report-uri": [CSP_REPORT_PATH],
}
# Browser features no page uses, switched off (feature -> allowed origins; empty: none).
PERMISSIONS_POLICY = {feature: [] for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "payment", "usb")}

INSTALLED_APPS = [
    "config.apps.DatafiAdminConfig",  # django.contrib.admin with sections (config/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "config.apps.ConfigConfig",  # the control plane's sync_schedule command
    "events",
    "notifications",
    "channels_app",
    "web",
    "operations",  # health, readiness, metrics, the admin's Overview, manage.py status
    # Plug-in apps (a channel of your own, README "Adding a channel"), comma-separated.
    *env.list("DATAFI_EXTRA_APPS", default=[]),
]

MIDDLEWARE = [
    "operations.middleware.ProbeMiddleware",  # probes: before the host check, HTTPS redirect
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",  # CSP, Permissions-Policy: every response
    "config.middleware.RefuseNulInUrlMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # web, worker and beat share one file: wait for locks instead of failing, and take
        # the write lock up front so two writers never deadlock on a lock upgrade.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a worker process in the tests sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections (web requests and worker tasks, see config/celery.py): a new
# PostgreSQL session per request or task costs more than the work itself. Checked before
# reuse, so one the server dropped is replaced, not handed to a request. SQLite: no gain.
_is_sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DATABASES["default"].setdefault(  # ?conn_max_age= in DATABASE_URL wins
    "CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0 if _is_sqlite else 60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# The app's own sign-in page (any user); the admin keeps its own for staff.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "notification-center"
LOGOUT_REDIRECT_URL = "login"

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a bad token answers 401 with WWW-Authenticate, as token clients expect.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "core.rest.BrowsableAPIRenderer",  # DRF's, within the CSP
    ],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",  # errors and strict requests, once
    "DEFAULT_FILTER_BACKENDS": [],
    # A service's ApplicationError or ValidationError answers 400 {field: [message]}.
    "EXCEPTION_HANDLER": "core.rest.exception_handler",
    "DEFAULT_PARSER_CLASSES": [  # DRF's, with JSON nested too deeply a 400, not a 500
        "events.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # The client address (of throttles, and of the sign-in limit below) is REMOTE_ADDR unless
    # this many proxies in front of gunicorn set X-Forwarded-For; trusting the header blindly
    # would let a client pick its own address.
    "NUM_PROXIES": env.int("DATAFI_NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Datafi Events & Notifications API",
    "DESCRIPTION": "Emit events, read and acknowledge notifications, administer routing.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Requests and answers described apart: a request has no read-only field (the API
    # refuses them) and a write-only one (a password) is in no answer.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"PriorityEnum": "events.catalog.Priority.CHOICES"},
    # Swagger UI served from our own static files: /api/docs/ works without internet, and its
    # start script is a separate request (SpectacularSwaggerSplitView), not inline: the CSP
    # allows no inline script. No online validator badge (an image from elsewhere).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport with atomic publishing and a safe exchange table: its
    # own lets a consumer read a half-written message and crash the worker (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A dead or hung broker must never block emit() for long: one connection attempt
        # (kombu otherwise retries after 2 s, then 4 s: 6 s against a refused port), each
        # connect and socket operation bounded.
        "max_retries": 0,
        "socket_connect_timeout": 3,
        "socket_timeout": 3,
        # An unacked message whose worker died comes back only after this long; the outbox
        # sweep re-enqueues critical/high events far sooner (DATAFI_OUTBOX_URGENT_STALE_SECONDS).
        # Retry countdowns (ETA tasks) must stay well below it, or Redis redelivers them:
        # DATAFI_RETRY_MAX_SECONDS is checked against it below.
        "visibility_timeout": 3600,
    }
else:  # amqp:// (RabbitMQ): unacked messages are redelivered as soon as a connection drops.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "max_retries": 0,  # one connection attempt, bounded by broker_connection_timeout
    }
# Connect (and for RabbitMQ the AMQP handshake) within this many seconds.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = None  # no results are kept, so beat needs no backend_cleanup task
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# acks_late tasks are idempotent: on a lost broker connection the worker stops them and the
# broker redelivers (Celery's recommended setting for acks_late, and its future default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Queues and routes come from the control plane (config/control_plane.py): one table of every
# task with its queue, retries and schedule. Run one worker per queue (README, "Scale out").
CELERY_TASK_DEFAULT_QUEUE = control_plane.DEFAULT_QUEUE
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name)
                      for name in control_plane.QUEUES]
CELERY_TASK_ROUTES = control_plane.routes()

# --- Cache: throttling counters shared by every web process ------------------------------
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CELERY_BROKER_URL,
                          "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
else:  # one machine: a directory every process of it shares
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}
CACHES["default"].setdefault("KEY_PREFIX", "datafi")

# --- Product settings ---------------------------------------------------------------------
# Password guessing (events.signin): at most this many failed sign-in attempts per client
# address and, separately, per username, over every way to sign in (token endpoint, the
# app's and the admin's sign-in pages), counted in the shared cache. DRF's rate syntax.
# DATAFI_TOKEN_THROTTLE_RATE is its former name (the token endpoint's alone), still read.
DATAFI_SIGNIN_THROTTLE_RATE = env.str(
    "DATAFI_SIGNIN_THROTTLE_RATE", default=env.str("DATAFI_TOKEN_THROTTLE_RATE", default="10/min"))
DATAFI_MAX_PAYLOAD_BYTES = 64 * 1024
DATAFI_MAX_PAYLOAD_DEPTH = env.int("DATAFI_MAX_PAYLOAD_DEPTH", default=32)
DATAFI_MAX_ROUTING_FILE_BYTES = env.int("DATAFI_MAX_ROUTING_FILE_BYTES", default=256 * 1024)
# An event whose publish failed is enqueued again by the next outbox sweep (every 30 s), and
# one unrouted this long after emit or its last enqueue (a lost message) too.
DATAFI_OUTBOX_STALE_SECONDS = env.int("DATAFI_OUTBOX_STALE_SECONDS", default=600)
# The same for critical and high: back within 2 minutes (this plus one sweep interval).
DATAFI_OUTBOX_URGENT_STALE_SECONDS = env.int("DATAFI_OUTBOX_URGENT_STALE_SECONDS", default=45)
# Medium, low and info events are routed in batches of at most this many (one transaction
# each) by one events_route_pending task, requested by emit through a cache flag that lives
# at most DATAFI_ROUTING_REQUEST_SECONDS (a lost request stops holding back new ones then).
DATAFI_ROUTING_BATCH_SIZE = env.int("DATAFI_ROUTING_BATCH_SIZE", default=500)
# A critical or high event is routed at once, then up to this many -1 others waiting (a burst).
DATAFI_URGENT_ROUTING_BATCH_SIZE = env.int("DATAFI_URGENT_ROUTING_BATCH_SIZE", default=50)
DATAFI_ROUTING_REQUEST_SECONDS = env.int("DATAFI_ROUTING_REQUEST_SECONDS", default=60)
# After a failed publish a process leaves the broker alone this long (the sweep publishes).
DATAFI_BROKER_BACKOFF_SECONDS = env.int("DATAFI_BROKER_BACKOFF_SECONDS", default=30)
# How often an open page's bell asks whether anything changed (an unchanged answer is a 304).
DATAFI_BELL_POLL_SECONDS = env.float("DATAFI_BELL_POLL_SECONDS", default=10)
# A flush sends in-app digests in chunks of at most this many items, one transaction each.
DATAFI_FLUSH_CHUNK_ITEMS = env.int("DATAFI_FLUSH_CHUNK_ITEMS", default=5000)
# Events, notifications, deliveries and digests older than this many days are deleted once
# nothing about them is still to be sent (notifications.retention, hourly); 0 keeps all.
DATAFI_RETENTION_DAYS = env.int("DATAFI_RETENTION_DAYS", default=90)
# The channels of an event no routing rule covers, by its effective priority (PRODUCT.md).
DATAFI_DEFAULT_CHANNELS = {"critical": ["in_app", "email", "webhook"], "high": ["in_app", "email"],
                           "medium": ["in_app"], "low": ["in_app"], "info": ["in_app"]}
# A digest that fails this many flushes is marked failed, its items too.
DATAFI_DIGEST_MAX_ATTEMPTS = env.int("DATAFI_DIGEST_MAX_ATTEMPTS", default=3)
# The delivery policies routing runs, in order, between "who is in the audience" and "write
# the rows" (notifications/policies/), for whole events or (recipient, channel) pairs.
DATAFI_ROUTING_POLICIES = env.list("DATAFI_ROUTING_POLICIES", default=[
    "notifications.policies.disabled.EventTypeDisabled",  # an admin's settings first:
    "notifications.policies.silences.Silences",  # they stop any priority
    "notifications.policies.inhibition.Inhibition",
    "notifications.policies.grouping.Grouping",
    "notifications.policies.resolution.Resolution",  # keep state, decide nothing:
    "notifications.policies.escalation.Escalations",  # what routing starts or ends
    "notifications.policies.critical.CriticalAlways",  # then users' own choices, never
    "notifications.policies.mutes.Mutes",  # for a critical event
    "notifications.policies.preferences.Preferences",
    "notifications.policies.quiet_hours.QuietHours",
])
# An escalation's after_minutes counts minutes of this many seconds (tests: 1).
DATAFI_ESCALATION_MINUTE_SECONDS = env.float("DATAFI_ESCALATION_MINUTE_SECONDS", default=60.0)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)

# --- Operating it (operations/, config/observability.py) -------------------------------
# Log lines plain or JSON; /metrics wants "Bearer <token>" if set, else this host only;
# /readyz's check timeout and beat's most lag; hours the Overview recomputes after they end.
LOG_FORMAT = observability.log_format(env)
LOGGING = observability.logging_config(LOG_FORMAT, env.str("LOG_LEVEL", default="INFO"))
PROMETHEUS_MULTIPROC_DIR = observability.metrics_dir(env, VAR_DIR)
DATAFI_METRICS_TOKEN = env.str("DATAFI_METRICS_TOKEN", default="")
DATAFI_READYZ_TIMEOUT_SECONDS = env.float("DATAFI_READYZ_TIMEOUT_SECONDS", default=2)
DATAFI_BEAT_HEARTBEAT_MAX_AGE_SECONDS = env.float("DATAFI_BEAT_HEARTBEAT_MAX_AGE_SECONDS", 60)
DATAFI_OVERVIEW_SETTLE_HOURS = env.int("DATAFI_OVERVIEW_SETTLE_HOURS", default=3)

# --- Outbound deliveries --------------------------------------------------------------------
# The app's address, for links in emails ("open in Datafi").
DATAFI_APP_URL = env.str("DATAFI_APP_URL", default="http://localhost:8000/")
# A transient failure is retried after base x 2^(n-1) s (n: the attempt that failed), +-20%
# jitter, at most the cap: well below the broker's visibility timeout (asserted below).
DATAFI_RETRY_BASE_SECONDS = env.float("DATAFI_RETRY_BASE_SECONDS", default=10)
DATAFI_RETRY_MAX_SECONDS = env.float("DATAFI_RETRY_MAX_SECONDS", default=300)
DATAFI_EMAIL_MAX_ATTEMPTS = env.int("DATAFI_EMAIL_MAX_ATTEMPTS", default=4)
# Sends: tasks of BATCH over a kept connection; a large audience: LANES tasks of LANE_BATCH on
# the bulk lane; an SMTP connection: MAX_MESSAGES at most, or MAX_IDLE (README "Sending at scale")
DATAFI_SEND_BATCH = env.int("DATAFI_SEND_BATCH", default=20)
DATAFI_SEND_LANES = env.int("DATAFI_SEND_LANES", default=2)
DATAFI_SEND_LANE_BATCH = env.int("DATAFI_SEND_LANE_BATCH", default=100)
SMTP_MAX_MESSAGES_PER_CONNECTION = env.int("SMTP_MAX_MESSAGES_PER_CONNECTION", default=500)
SMTP_MAX_IDLE_SECONDS = env.float("SMTP_MAX_IDLE_SECONDS", default=30)
# A delivery still "sending" this long after its attempt started lost its worker: the
# delivery sweep sends it again. Longer than any SMTP/HTTP timeout (the SMTP one is <= 300).
DATAFI_SENDING_TIMEOUT_SECONDS = env.float("DATAFI_SENDING_TIMEOUT_SECONDS", default=330)
# A pending delivery this long past its due time lost its task message: the sweep re-enqueues.
DATAFI_DELIVERY_GRACE_SECONDS = env.float("DATAFI_DELIVERY_GRACE_SECONDS", default=60)
_visibility_timeout = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
assert _visibility_timeout is None or _visibility_timeout >= 2 * DATAFI_RETRY_MAX_SECONDS, (
    "DATAFI_RETRY_MAX_SECONDS must stay well below (at most half) the broker's "
    "visibility_timeout, or a retry scheduled with a countdown is delivered twice")

# --- Webhooks -----------------------------------------------------------------------------
# Per attempt: seconds to connect, to wait for and read at most MAX_RESPONSE_BYTES; no redirects.
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5)
WEBHOOK_READ_TIMEOUT_SECONDS = env.float("WEBHOOK_READ_TIMEOUT_SECONDS", default=15)
WEBHOOK_MAX_RESPONSE_BYTES = env.int("WEBHOOK_MAX_RESPONSE_BYTES", default=4096)
# This many failed deliveries in a row deactivate an endpoint (0: never) and tell staff.
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
# The CAs (a PEM file) receivers' certificates chain to; empty: certifi's (Mozilla's). The
# transport ignores the environment, REQUESTS_CA_BUNDLE included.
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")
if WEBHOOK_CA_BUNDLE and not Path(WEBHOOK_CA_BUNDLE).is_file():
    raise ImproperlyConfigured(f"WEBHOOK_CA_BUNDLE: {WEBHOOK_CA_BUNDLE} is not a file.")
