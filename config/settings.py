"""Settings, all read from the environment.

Development defaults just work on one laptop (SQLite under .local/, Redis on localhost).
With DJANGO_ENV=production the process refuses to start on an unsafe value: DEBUG on,
the development SECRET_KEY, or no ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"  # runtime files of the development run (ignored by git)


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


ENVIRONMENT = env("DJANGO_ENV", "development")
IS_PRODUCTION = ENVIRONMENT == "production"

DEVELOPMENT_SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", not IS_PRODUCTION)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", "" if IS_PRODUCTION else "localhost,127.0.0.1,[::1],testserver"
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

if IS_PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG is on")
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY is the development default or shorter than 32 characters")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is empty")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "events",
    "webhooks",
    "notifications",
    "concerts",
    "queueing",
    "reservations",
    "payments",
    "console",
]

MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    "config.health.HealthCheckMiddleware",
    "config.edge.ApiBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
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
        "DIRS": [],
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

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{LOCAL_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A ping before a reused connection's first query in each request: a connection the
        # server dropped (a restart, a failover) is replaced instead of failing a customer's
        # request. It costs a round trip of latency and no measurable throughput (bench/:
        # the ceiling and the queue poll within noise with it on and off). Off, such a
        # connection fails one request with 503 + Retry-After and is then discarded.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.mysql":
    _db.setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # READ COMMITTED: no gap locks, so concurrent writers to different rows of a
            # table (seats of one schedule) do not block or deadlock each other.
            "isolation_level": "read committed",
            # A request waits at most 5 s for a row lock (the default, 50 s, is longer than a
            # request may take); a timeout is retried like a deadlock (config.db).
            "init_command": (
                "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00', innodb_lock_wait_timeout=5"
            ),
        }
    )
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    LOCAL_DIR.mkdir(exist_ok=True)
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock at
            # BEGIN so two writers queue up instead of failing with "database is locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, throttling, Celery broker -------------------------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every key this deployment writes starts with this prefix, so several deployments (or test
# runs) can share one Redis without touching each other's keys.
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", "concerts")

# A call to a hung Redis gives up after REDIS_SOCKET_TIMEOUT, with no client-side retries, and
# then calls to it fail at once for REDIS_CIRCUIT_OPEN_SECONDS (config/redis.py): a slow Redis
# costs queue-gated calls a quick 503 and every other call nothing.
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "0.5"))
REDIS_CIRCUIT_OPEN_SECONDS = float(env("REDIS_CIRCUIT_OPEN_SECONDS", "2"))
# The waiting room's Redis, when it is not the one above (docs/deployment.md): empty = the
# queue uses REDIS_URL's server, as the cache does; `redis://host:port/0` = a standalone Redis
# of its own; `redis+cluster://host1:port1,host2:port2/` = a Redis Cluster (startup nodes).
# The cache and the Celery broker stay on REDIS_URL: Celery cannot use a cluster.
QUEUE_REDIS_URL = env("QUEUE_REDIS_URL", "")
if QUEUE_REDIS_URL:
    from config.redis import redis_url_check

    redis_url_check(QUEUE_REDIS_URL)  # a typo stops the start, not the first queue call


def _redis_cache(*, ignore_exceptions: bool) -> dict:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from config.redis import connection_class_for

    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "TIMEOUT": 300,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "CONNECTION_POOL_KWARGS": {
                "connection_class": connection_class_for(REDIS_URL),
                "retry": Retry(NoBackoff(), 0),
            },
            "IGNORE_EXCEPTIONS": ignore_exceptions,
        },
    }


CACHES = {
    # The catalog falls back to the database when Redis is down instead of failing;
    # /healthz still reports Redis as down.
    "default": _redis_cache(ignore_exceptions=True),
    # For what must know that Redis did not answer: the login throttle (it falls back to a
    # per-process limit rather than letting every attempt through).
    "strict": _redis_cache(ignore_exceptions=False),
}
# The circuit breaker logs an outage once (config/redis.py), not a traceback per request.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "queueing-admit-waiting-customers": {
        "task": "queueing.tasks.admit_waiting_customers",
        "schedule": 1.0,
        # A tick that waited longer than this is pointless: the next one is already due.
        "options": {"expires": 2},
    },
    "reservations-expire-lapsed-holds": {
        "task": "reservations.tasks.expire_lapsed_holds",
        "schedule": 5.0,
        "options": {"expires": 10},
    },
    "payments-resume-refund-jobs": {
        "task": "payments.tasks.resume_refund_jobs",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    "payments-pay-pending-waitlist-offers": {
        "task": "payments.tasks.pay_pending_waitlist_offers",
        "schedule": 10.0,
        "options": {"expires": 10},
    },
    "events-dispatch": {
        "task": "events.tasks.dispatch_events",
        "schedule": 2.0,
        "options": {"expires": 2},
    },
    "webhooks-deliver": {
        "task": "webhooks.tasks.deliver_webhooks",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "notifications-send-due-messages": {
        "task": "notifications.tasks.send_customer_messages",
        "schedule": 5.0,
        "options": {"expires": 5},
    },
    "events-prune": {
        "task": "events.tasks.prune_events",
        "schedule": 3600.0,
    },
    "accounts-delete-old-idempotency-records": {
        "task": "accounts.tasks.delete_old_idempotency_records",
        "schedule": 3600.0,
    },
    "accounts-clear-expired-sessions": {
        "task": "accounts.tasks.clear_expired_sessions",
        "schedule": 3600.0,
    },
}

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("FAST_PASSWORD_HASHER", False):
    # Tests and benchmarks create thousands of users; PBKDF2 at full strength would dominate.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Time: UTC in the database, local time with its offset in the API and admin -------------
USE_TZ = True
TIME_ZONE = env("TIME_ZONE", "Asia/Seoul")

# --- Language: Korean by default, English on request ----------------------------------------
# LocaleMiddleware picks per request from Accept-Language (then the default). Our strings are
# written in English and translated in locale/ko (docs/i18n.md); error `code`s never change.
USE_I18N = True
LANGUAGE_CODE = env("LANGUAGE_CODE", "ko")
LANGUAGES = [("ko", "한국어"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files (admin, Swagger UI from drf-spectacular-sidecar) --------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / ".local" / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION  # development serves straight from the apps
if not IS_PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it

# --- Security (production) ------------------------------------------------------------------
# How many reverse proxies sit in front of gunicorn. The client IP (for throttling) is read
# from X-Forwarded-For only that deep, and X-Forwarded-Proto is believed only behind one: 0
# ignores both headers, which any client can forge, so an unset value must never mean
# "trust it".
NUM_PROXIES = env_int("NUM_PROXIES", 0)
if NUM_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
# Every API body is a small JSON object; larger ones are 413 (config/edge.py).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, 2_621_440)  # admin forms: Django's default
if IS_PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "NUM_PROXIES": NUM_PROXIES,
}

# Signup and login attempts per client IP: slows password guessing, not real customers.
AUTH_THROTTLE_RATE = env("AUTH_THROTTLE_RATE", "30/minute")
# Waiting customers polling their queue status well before the poll_after_seconds they were
# told get 429 queue_poll_too_early (docs/queue.md, "Polling"). Off only for benchmark rows
# that poll the same customers in a tight loop to measure the poll itself.
QUEUE_POLL_GATE = env_bool("QUEUE_POLL_GATE", True)
# Joining and leaving the waitlist, per customer (it is not behind the queue).
WAITLIST_THROTTLE_RATE = env("WAITLIST_THROTTLE_RATE", "30/minute")

# GET /api/v1/_bench/noop: an authenticated endpoint that does nothing, behind the same
# middleware and authentication as the API. The benchmark's ceiling (bench/); off by default.
BENCHMARK_ENDPOINTS = env_bool("BENCHMARK_ENDPOINTS", False)

SPECTACULAR_SETTINGS = {
    "TITLE": "Concert reservations API",
    "DESCRIPTION": (
        "Browse concerts, wait in a fair queue, hold up to 4 seats, top up a wallet and pay.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (from signup or login). Every error "
        'has one shape: `{"error": {"code": "...", "message": "...", "details": {...}}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayRequestDuration": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SeatStatusEnum": "concerts.models.SeatStatus",
        "QueueStatusEnum": "queueing.models.QueueState",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# Catalog cache lifetimes (seconds). Operator changes invalidate the catalog at once; the
# lifetimes only bound how stale seat counts may be, which move with every hold.
CATALOG_CACHE_SECONDS = env_int("CATALOG_CACHE_SECONDS", 300)
SEAT_COUNTS_CACHE_SECONDS = env_int("SEAT_COUNTS_CACHE_SECONDS", 2)
# How long each web process may reuse a concert's queue settings and a schedule's concert
# (config/localcache.py): an operator's change (pause, publish) reaches every process within
# this. 0 reads them from the database on every request.
LOCAL_CACHE_SECONDS = env_int("LOCAL_CACHE_SECONDS", 2)
# Seat maps are cached as rendered JSON, invalidated by every change to a seat of the schedule
# (concerts/cache.py) and never kept past the first hold that expires; this bounds the rest.
SEAT_MAP_CACHE_SECONDS = env_int("SEAT_MAP_CACHE_SECONDS", 60)

# JSON lines in production (LOG_FORMAT=json|plain), each with the request id of the request or
# task that wrote it (config/request_id.py).
LOG_FORMAT = env("LOG_FORMAT", "json" if IS_PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.request_id.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {"()": "config.request_id.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # 4xx answers are customers' outcomes (a taken seat is a 409 in every stampede), not
        # server trouble; a WARNING line for each would drown the log. 5xx still log.
        "django.request": {"level": "ERROR"},
    },
}

# --- Events (docs/events.md) ----------------------------------------------------------------
# The channels the relay hands each event to: each `fan_out(event)` creates its own delivery
# rows in the relay's transaction.
# Integrators' endpoints (docs/webhooks.md) and customer emails (docs/notifications.md); an
# empty EVENT_CHANNELS records and relays events without handing them to any channel.
EVENT_CHANNELS = env_list(
    "EVENT_CHANNELS", "webhooks.channel.fan_out,notifications.channel.fan_out"
)

# --- Email to customers (docs/notifications.md) ---------------------------------------------
# The console in development and the run command (mail is printed by the worker), SMTP from
# the environment in production; tests use Django's locmem outbox.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Seconds per network operation of an SMTP send: a send must end well inside the sender's
# lease (notifications.services.LEASE_MARGIN), or a second worker could send it too.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "no-reply@tickets.localhost")
# SMS / KakaoTalk 알림톡: the class that sends them (notifications/sms.py); logging only until
# a provider is wired in.
SMS_SENDER = env("SMS_SENDER", "notifications.sms.LoggingSmsSender")

# --- Metrics (docs/metrics.md) ---------------------------------------------------------------
# GET /metrics for Prometheus, answered only with `Authorization: Bearer <METRICS_TOKEN>`; unset,
# there is no such path and no request pays for counting (the middleware is not installed).
# Under gunicorn, PROMETHEUS_MULTIPROC_DIR (an empty folder per machine, set before the
# processes start; config/gunicorn.conf.py makes one when it is unset) lets one scrape sum
# every worker's counts.
METRICS_TOKEN = env("METRICS_TOKEN", "")
if IS_PRODUCTION and METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("Refusing to start in production: METRICS_TOKEN is shorter than 32")
if METRICS_TOKEN:
    # Right after the request id: a scrape skips sessions, CSRF, ALLOWED_HOSTS (Prometheus
    # scrapes by address) and the customers' authentication; every other request is timed.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("config.request_id.RequestIdMiddleware") + 1,
        "monitoring.middleware.MetricsMiddleware",
    )
INSTALLED_APPS.append("monitoring")  # counts Celery task runs wherever tasks run
# A Celery worker on another machine serves its own counts on this port (0: it does not),
# bound to this address, with the same token (monitoring/worker.py).
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_BIND = env("METRICS_WORKER_BIND", "0.0.0.0")

# --- Webhooks (docs/webhooks.md) ------------------------------------------------------------
# Endpoint URLs must resolve to public addresses (SSRF), checked when an endpoint is saved and
# at each delivery; true allows loopback and private networks (development, tests).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
# Seconds a delivery waits for the connection and for each read of the answer.
WEBHOOK_TIMEOUT_SECONDS = float(env("WEBHOOK_TIMEOUT_SECONDS", "5"))
# A delivery is retried (exponential backoff, at most an hour apart) this long after its
# first attempt, then marked failed.
WEBHOOK_RETRY_HOURS = env_int("WEBHOOK_RETRY_HOURS", 24)
# POSTs one delivery run keeps going at once (threads), at most 4 of them to one endpoint.
WEBHOOK_WORKERS = env_int("WEBHOOK_WORKERS", 8)
