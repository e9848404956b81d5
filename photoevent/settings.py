"""photoevent settings.

Every value comes from an environment variable read through the strict helpers
of photoevent/env.py; the README lists them all. The defaults give the embedded
setup (SQLite, local filesystem, local face backend) that runs on a new machine
with no server.

Loading this module creates no file and no folder: photoevent.datadir's
prepare_data_dir() does that, called by the entry points before first use.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from csp import constants as csp_constants
from django.core.exceptions import ImproperlyConfigured

from photoevent.datadir import data_dir_from_env, read_secret_key
from photoevent.env import env_bool, env_choice, env_float, env_int, env_list, env_networks, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = data_dir_from_env()
# The embedded setup keeps a generated key in DATA_DIR so that sessions and
# tokens survive a restart without anyone having to invent a secret. The entry
# points make it (photoevent.datadir.prepare_data_dir) before the settings load.
SECRET_KEY = env_str("SECRET_KEY") or read_secret_key(DATA_DIR)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Production hardening; on by default only where it cannot break plain-HTTP local use.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_HTTPS_PROXY", False) else None
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "anymail",
    # OpenAPI schema; the sidecar serves Swagger UI's files from this site, not a CDN.
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "knox",
    "axes",
    "gallery",
    # Before django_q: its qcluster command wraps django-q2's with queue recovery.
    "processing",
    "django_q",
]

MIDDLEWARE = [
    # First, so that an oversized body to a login or sign-up endpoint is
    # refused before anything reads (and spools) it.
    "photoevent.logins.SmallLoginBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common: picks the language from the cookie that
    # the footer's switcher sets, else from Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "photoevent.urls"
WSGI_APPLICATION = "photoevent.wsgi.application"

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

# --- Database -------------------------------------------------------------


def _database_from_url(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    # Per web process. A sync worker uses one connection at a time and a
    # threaded one WEB_THREADS; all the processes of all the hosts must stay
    # well under the server's max_connections (100 by default).
    pool_size = env_int("DB_POOL_SIZE", 2, minimum=1)
    max_overflow = env_int("DB_MAX_OVERFLOW", 8, minimum=0)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Pooled connections are reused by psycopg's pool, so Django must not
        # keep its own persistent connections on top of it.
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "pool": {
                "min_size": pool_size,
                "max_size": pool_size + max_overflow,
                "timeout": env_int("DB_POOL_TIMEOUT", 60, minimum=1),
                "max_lifetime": env_int("DB_POOL_RECYCLE", 1800, minimum=60),
            },
        },
    }


DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES: dict[str, dict[str, Any]] = {"default": _database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": Path(env_str("SQLITE_PATH", str(DATA_DIR / "db.sqlite3"))),
            # A file, not memory, so that tests can share it with the web and
            # qcluster subprocesses they start.
            "TEST": {"NAME": str(DATA_DIR / "test-db.sqlite3")},
            # Kept open for the life of each web thread: opening one costs more
            # than a cached page (Django registers its SQL functions and the
            # pragmas below run again), and a local file needs no health check.
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                # WAL lets readers run while a worker writes; IMMEDIATE takes the
                # write lock at BEGIN so that two writers queue on busy_timeout
                # instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                # Seconds a connection waits for another's write lock.
                "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30, minimum=1),
                # The busy timeout is "timeout" above (sqlite3.connect's); a
                # busy_timeout PRAGMA here would override it.
                "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "photoevent",
        }
    }
else:
    # The embedded cache must be shared by every web and worker process of the
    # machine, so that invalidation and rate-limit counters hold across them:
    # LocMemCache is per process. diskcache keeps entries in sharded SQLite
    # files under DATA_DIR and its incr() is atomic across processes, which
    # django-ratelimit needs; Django's own database and file caches implement
    # incr() as read-then-write and would undercount under load.
    # PersistentDiskCache keeps its SQLite connections open between requests.
    CACHES = {
        "default": {
            "BACKEND": "photoevent.cache.PersistentDiskCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "SHARDS": 4,
            "DATABASE_TIMEOUT": 1.0,
            "OPTIONS": {"size_limit": env_int("CACHE_SIZE_MB", 256, minimum=8) * 1024 * 1024},
        }
    }

CACHE_TTL_USER_PHOTOS = env_int("CACHE_TTL_USER_PHOTOS", 30, minimum=1)
CACHE_TTL_EVENT_DATA = env_int("CACHE_TTL_EVENT_DATA", 120, minimum=1)
CACHE_TTL_USER_DATA = env_int("CACHE_TTL_USER_DATA", 60, minimum=1)

# --- Rate limits (django-ratelimit, counters in the default cache) ---

RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATE_LIMITS = {
    "upload": env_rate("RATE_LIMIT_UPLOAD", "100/m"),  # per photographer
    "my-photos": env_rate("RATE_LIMIT_MY_PHOTOS", "60/m"),  # per user
    "auth": env_rate("RATE_LIMIT_AUTH", "20/m"),  # per IP: login, token, register, guests, sign-in links
    "live-selfie": env_rate("RATE_LIMIT_LIVE_SELFIE", "10/m"),  # per user: challenges, and live checks apart
    "join": env_rate("RATE_LIMIT_JOIN", "10/m"),  # per user (per IP when anonymous): join attempts
    "join-ip": env_rate("RATE_LIMIT_JOIN_IP", "30/m"),  # per IP: join attempts of all its users
    "sign-in-link": env_rate("RATE_LIMIT_SIGN_IN_LINK", "5/h"),  # per email address asked for
    # A selfie is decoded and searched for a face in the web process.
    "selfie": env_rate("RATE_LIMIT_SELFIE", "5/m"),  # per user
    # Per address: guests at a venue often share one public address.
    "selfie-ip": env_rate("RATE_LIMIT_SELFIE_IP", "30/m"),
}
# Every per-address limit keys on photoevent.client_ip.client_ip: the socket
# address, or behind a reverse proxy the right-most X-Forwarded-For hop that
# is not one of TRUSTED_PROXIES (addresses or CIDR networks).
RATELIMIT_IP_META_KEY = "photoevent.client_ip.client_ip"
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", "127.0.0.0/8,::1")

# --- Storage --------------------------------------------------------------

STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "local", ("local", "s3"))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
# Media is never served from a public URL: every file goes through a view that
# checks access. MEDIA_URL only exists because Django requires it to differ
# from STATIC_URL.
MEDIA_URL = "/protected-media/"
if STORAGE_BACKEND == "s3":
    AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    # Signature version 4: presigned media URLs carry their expiry (X-Amz-Expires).
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_S3_FILE_OVERWRITE = False
    default_storage: dict[str, object] = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    # FileSystemStorage follows MEDIA_ROOT (and tests that redirect it).
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# How an access-checked media request is answered: S3 storage redirects to a
# presigned URL valid this long; local files go through the front proxy when
# MEDIA_ACCEL names it (nginx: X-Accel-Redirect to the internal location
# MEDIA_URL; sendfile: X-Sendfile with the file's path), and are streamed by
# Django otherwise. Either way no web worker is held for the transfer.
MEDIA_URL_TTL = env_int("MEDIA_URL_TTL", 300, minimum=10, maximum=7 * 24 * 3600)
MEDIA_ACCEL = env_choice("MEDIA_ACCEL", "", ("", "nginx", "sendfile"))
# "Download all" ZIPs: up to this many bytes of originals are streamed by the
# web worker (a few seconds on a phone network); larger ones are built on the
# queue into storage and then served like a photo. 0 always uses the queue.
ZIP_STREAM_MAX_BYTES = env_int("ZIP_STREAM_MAX_BYTES", 8 * 1024 * 1024, minimum=0)
# Built ZIPs are deleted this many hours after they were made (hourly sweep).
ARCHIVE_TTL_HOURS = env_int("ARCHIVE_TTL_HOURS", 24, minimum=1)
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Hashed, compressed names once `collectstatic` has run; plain names served
# from the app folders before that (tests, a first runserver).
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "photoevent.static_storage.CollectedStaticFilesStorage"},
}


# --- Content-Security-Policy (django-csp) ----------------------------------
# Scripts, styles, images and forms from this site only, and no inline script
# or style: templates/ keeps them in static/. data: images are for the admin's
# and the browsers' own icons. With S3 storage, media requests redirect to
# presigned URLs of the bucket, whose origins images may also come from
# (CSP_MEDIA_ORIGINS, by default the bucket's virtual-hosted origins or the
# origin of AWS_S3_ENDPOINT_URL).


def _s3_media_origins() -> str:
    if AWS_S3_ENDPOINT_URL:
        endpoint = urlparse(AWS_S3_ENDPOINT_URL)
        return f"{endpoint.scheme}://{endpoint.netloc}"
    origins = [f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com"]
    if AWS_S3_REGION_NAME:
        origins.append(f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{AWS_S3_REGION_NAME}.amazonaws.com")
    return ",".join(origins)


CSP_MEDIA_ORIGINS = env_list("CSP_MEDIA_ORIGINS", _s3_media_origins() if STORAGE_BACKEND == "s3" else "")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF],
        "style-src": [csp_constants.SELF],
        "img-src": [csp_constants.SELF, "data:", *CSP_MEDIA_ORIGINS],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.NONE],
        "frame-ancestors": [csp_constants.NONE],
        "form-action": [csp_constants.SELF],
    }
}


# --- Uploads --------------------------------------------------------------

MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 50, minimum=1)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 120_000_000, minimum=1_000_000)
# A selfie that cannot be decoded at reduced size (PNG, WebP; JPEG can) is
# refused from its header above this many pixels, before it is decoded: it
# bounds the web process's memory for one selfie (4 bytes a pixel).
SELFIE_MAX_PIXELS = env_int("SELFIE_MAX_PIXELS", 16_000_000, minimum=1_000_000)
# Files above this are streamed to a temporary file rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_FILES_PER_REQUEST", 100, minimum=1)
# Upload temp files land here; prepare_data_dir() creates it.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
# Photos are private to the account that runs the server, like all its data.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# --- Photo processing -----------------------------------------------------

PHOTO_ANALYSIS_MAX_SIDE = env_int("PHOTO_ANALYSIS_MAX_SIDE", 1600, minimum=320)
PHOTO_WEB_MAX_SIDE = env_int("PHOTO_WEB_MAX_SIDE", 1600, minimum=320)
PHOTO_THUMBNAIL_MAX_SIDE = env_int("PHOTO_THUMBNAIL_MAX_SIDE", 400, minimum=64)

PHOTO_QUEUE_MAX_SIZE = env_int("PHOTO_QUEUE_MAX_SIZE", 1000, minimum=1)
PHOTO_QUEUE_WORKERS = env_int("PHOTO_QUEUE_WORKERS", 3, minimum=1)
# Niceness added to the queue processes (manage.py qcluster and every worker it
# forks), so that face processing takes the CPU the web processes leave rather
# than slowing the pages down; 0 keeps the priority it was started with.
QCLUSTER_NICE = env_int("QCLUSTER_NICE", 10, minimum=0, maximum=19)
PHOTO_QUEUE_BATCH_SIZE = env_int("PHOTO_QUEUE_BATCH_SIZE", 5, minimum=1)
PHOTO_QUEUE_MAX_RETRIES = env_int("PHOTO_QUEUE_MAX_RETRIES", 3, minimum=1)
# Seconds one photo may take; a batch task gets this times the batch size.
PHOTO_TASK_TIMEOUT = env_int("PHOTO_TASK_TIMEOUT", 120, minimum=1)
PHOTO_RETRY_BASE_DELAY = env_float("PHOTO_RETRY_BASE_DELAY", 5.0, minimum=0.0)

# "local", "rekognition", or the dotted path of a FaceBackend subclass.
FACE_BACKEND = env_str("FACE_BACKEND", "local").strip()
if FACE_BACKEND not in ("local", "rekognition") and "." not in FACE_BACKEND:
    raise ImproperlyConfigured(f"FACE_BACKEND must be local, rekognition or a dotted class path, got {FACE_BACKEND!r}")
# Matching of dlib ResNet descriptors (Euclidean distances), see processing/matching.py.
# "event" clusters the event's faces with the selfies (default); "threshold" is
# the bare model: every face within FACE_MATCH_THRESHOLD of a selfie.
FACE_MATCH_STRATEGY = env_choice("FACE_MATCH_STRATEGY", "event", ("event", "threshold"))
# Mean distance at which a lone face or selfie joins a person's group ...
FACE_MATCH_THRESHOLD = env_float("FACE_MATCH_THRESHOLD", 0.59, minimum=0.0)
# ... shrinking towards this as both groups grow (many pairs, a steadier mean).
FACE_MATCH_GROUP_THRESHOLD = env_float("FACE_MATCH_GROUP_THRESHOLD", 0.49, minimum=0.0)
# Mean distance at which a new photo's face joins a guest's group at once, shown
# until the event-wide pass; stricter, since no stranger's faces compete for it.
FACE_MATCH_LIVE_THRESHOLD = env_float("FACE_MATCH_LIVE_THRESHOLD", 0.51, minimum=0.0)
# A guest's matched face this far or further from their selfies is one "Is this you?" asks about.
FACE_REVIEW_DISTANCE = env_float("FACE_REVIEW_DISTANCE", 0.52, minimum=0.0)
# ... and so is a face matched to nobody this close to their selfies (events where guests see all photos).
FACE_REVIEW_MISSED_DISTANCE = env_float("FACE_REVIEW_MISSED_DISTANCE", 0.60, minimum=0.0)
# Faces further than this from every selfie of an attendee are never theirs.
FACE_MATCH_RADIUS = env_float("FACE_MATCH_RADIUS", 0.65, minimum=0.0)
# A group of faces without a selfie joins the attendee whose selfie is within
# this mean distance, when every other attendee's selfie is MARGIN further.
FACE_MATCH_PIECE_THRESHOLD = env_float("FACE_MATCH_PIECE_THRESHOLD", 0.53, minimum=0.0)
FACE_MATCH_PIECE_MARGIN = env_float("FACE_MATCH_PIECE_MARGIN", 0.10, minimum=0.0)
# Distances are read against each face's neighbourhood: the mean distance to
# this many of its nearest faces in other photos (0: raw distances).
FACE_MATCH_COHORT = env_int("FACE_MATCH_COHORT", 30, minimum=0, maximum=200)
# Descriptor resampling passes for selfies: slower enrolment, steadier reference.
FACE_SELFIE_JITTERS = env_int("FACE_SELFIE_JITTERS", 10, minimum=1)
# Selfies an attendee's reference keeps; a new one beyond this replaces the oldest.
MAX_SELFIES = env_int("MAX_SELFIES", 3, minimum=1, maximum=10)
# Seconds between event-wide match refreshes while photos keep arriving.
EVENT_REFRESH_DELAY = env_int("EVENT_REFRESH_DELAY", 30, minimum=1)
# Detector upsampling passes: 1 finds faces down to about 40 px at analysis size.
FACE_DETECT_UPSAMPLE = env_int("FACE_DETECT_UPSAMPLE", 1, minimum=0)
FACE_MIN_SIZE = env_int("FACE_MIN_SIZE", 20, minimum=0)
# Selfies, face templates and matches of attendees who have not used the site
# for this many days are deleted by a daily schedule; the consent page says so.
FACE_DATA_RETENTION_DAYS = env_int("FACE_DATA_RETENTION_DAYS", 90, minimum=1)

# --- Live selfie (pose challenge, processing/liveness.py) ---
# Seconds a pose challenge stays valid: long enough to turn the head two or
# three times, short enough that a video cannot be made to order meanwhile.
LIVENESS_CHALLENGE_TTL = env_int("LIVENESS_CHALLENGE_TTL", 60, minimum=10, maximum=600)
# Largest descriptor distance between two frames of one live check: frames
# taken seconds apart are far closer than FACE_MATCH_THRESHOLD.
LIVENESS_SAME_PERSON_DISTANCE = env_float("LIVENESS_SAME_PERSON_DISTANCE", 0.45, minimum=0.0)

_task_timeout = PHOTO_TASK_TIMEOUT * PHOTO_QUEUE_BATCH_SIZE
Q_BROKER = env_choice("Q_BROKER", "orm", ("orm", "redis"))
Q_CLUSTER: dict[str, object] = {
    "name": "photoevent",
    "workers": PHOTO_QUEUE_WORKERS,
    # A hard kill after this many seconds frees a worker stuck in native code.
    "timeout": _task_timeout,
    # The broker redelivers a task that was not acknowledged after `retry`
    # seconds (a worker killed mid-batch). It must exceed the timeout, or a slow
    # batch would run twice in parallel; the photo claim makes it harmless anyway.
    "retry": _task_timeout + max(5, _task_timeout // 10),
    # Our own retry logic (Photo.attempts with backoff) decides about retries;
    # q2's default of 0 would redeliver a crashing task forever.
    "max_attempts": 1,
    # Acknowledge failed tasks too: their photos carry the failure themselves.
    "ack_failures": True,
    # Workers are recycled to bound the memory of native face libraries.
    "recycle": 200,
    "queue_limit": PHOTO_QUEUE_WORKERS * 2,
    "save_limit": 500,
    "label": "Task queue",
    "catch_up": False,
    "orm": "default",
    # The ORM broker looks for new tasks this often when the queue is empty: a
    # photographer's upload starts processing within it (one indexed query each).
    # A burst of 5 photos is done in well under a second, so the wait counts; the
    # idle cluster uses 1.2 % of a core at 0.1 s, 0.7 % at 0.2 s
    # (bench/processing_throughput.py --idle). The Redis broker does not poll.
    "poll": 0.1,
}
if Q_BROKER == "redis":
    if not REDIS_URL:
        raise ImproperlyConfigured("Q_BROKER=redis needs REDIS_URL")
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL
if env_bool("Q_SYNC", False):
    Q_CLUSTER["sync"] = True

# --- Face service: AWS Rekognition, concurrency limit, usage and costs -----
# Used when FACE_BACKEND=rekognition; credentials come from boto3's usual chain
# (environment, shared config, instance role). One collection per event.

AWS_REGION = env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", ""))
# Collection ids allow [a-zA-Z0-9_.-]; the event id is appended.
AWS_REKOGNITION_COLLECTION_PREFIX = env_str("AWS_REKOGNITION_COLLECTION_PREFIX", "photoevent-event-")
AWS_REKOGNITION_QUALITY_FILTER = env_choice(
    "AWS_REKOGNITION_QUALITY_FILTER", "auto", ("none", "auto", "low", "medium", "high")
).upper()
# IndexFaces keeps at most this many faces per photo, largest first (AWS caps it at 100).
AWS_REKOGNITION_MAX_FACES = env_int("AWS_REKOGNITION_MAX_FACES", 100, minimum=1)
# SearchFaces per new photo face: how many similar faces to look at for a member's selfie.
AWS_REKOGNITION_SEARCH_MAXFACES = env_int("AWS_REKOGNITION_SEARCH_MAXFACES", 10, minimum=1)
# SearchFacesByImage per selfie and event: how many photo faces one attendee can match.
AWS_REKOGNITION_SELFIE_SEARCH_MAXFACES = env_int("AWS_REKOGNITION_SELFIE_SEARCH_MAXFACES", 500, minimum=1)
# Rekognition similarity (0-100) from which two faces count as one person; 80 is AWS's default.
AWS_REKOGNITION_MATCH_THRESHOLD = env_float("AWS_REKOGNITION_MATCH_THRESHOLD", 80.0, minimum=0.0)
AWS_CONNECT_TIMEOUT = env_float("AWS_CONNECT_TIMEOUT", 5.0, minimum=0.1)
AWS_READ_TIMEOUT = env_float("AWS_READ_TIMEOUT", 30.0, minimum=0.1)
# botocore's own "standard" retries (total attempts per request) ...
AWS_BOTO_MAX_ATTEMPTS = env_int("AWS_BOTO_MAX_ATTEMPTS", 3, minimum=1)
# ... and ours on top, after throttling or a failed connection: each attempt
# takes a fresh concurrency slot, so backing off does not hold one.
AWS_RETRY_MAX_ATTEMPTS = env_int("AWS_RETRY_MAX_ATTEMPTS", 6, minimum=1)
AWS_RETRY_BASE_DELAY = env_float("AWS_RETRY_BASE_DELAY", 0.25, minimum=0.0)
# The startup check makes one free ListCollections call with short timeouts.
AWS_REKOGNITION_STARTUP_CHECK = env_bool("AWS_REKOGNITION_STARTUP_CHECK", True)

# Simultaneous face-service calls across every web and worker process: with
# REDIS_URL across machines, otherwise across the processes of this machine.
AWS_CONCURRENT_REQUESTS = env_int("AWS_CONCURRENT_REQUESTS", 10, minimum=1)
# The local backend's CPU guard: dlib calls at once on this machine.
LOCAL_FACE_CONCURRENCY = env_int("LOCAL_FACE_CONCURRENCY", max(1, os.cpu_count() or 1), minimum=1)
# How long a call waits for a slot before it fails as transient (and is retried).
FACE_LIMIT_WAIT_SECONDS = env_float("FACE_LIMIT_WAIT_SECONDS", 60.0, minimum=0.0)
# A Redis slot expires this long after its holder stopped renewing it (a crash).
FACE_LIMIT_LEASE_SECONDS = env_float("FACE_LIMIT_LEASE_SECONDS", 30.0, minimum=1.0)
FACE_LIMIT_LOCK_DIR = Path(env_str("FACE_LIMIT_LOCK_DIR", str(DATA_DIR / "locks")))
# Key prefix of the Redis semaphores (one sorted set per backend).
FACE_LIMIT_REDIS_PREFIX = env_str("FACE_LIMIT_REDIS_PREFIX", "photoevent:face-limit:")

# Unit prices for the cost estimate, in USD: image APIs (IndexFaces,
# SearchFaces, SearchFacesByImage, DetectFaces) per call, stored faces per month.
AWS_PRICE_PER_IMAGE = env_float("AWS_PRICE_PER_IMAGE", 0.001, minimum=0.0)
AWS_PRICE_PER_FACE_MONTH = env_float("AWS_PRICE_PER_FACE_MONTH", 0.00001, minimum=0.0)

# --- API ------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gallery.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50, minimum=1),
    "EXCEPTION_HANDLER": "photoevent.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document at /api/schema/ and its page at /api/docs/ (photoevent/openapi.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "photoevent API",
    "DESCRIPTION": "Event photos for the people in them: photographers upload, guests find their photos.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Auth -----------------------------------------------------------------

# django-axes sees every call to authenticate(): the pages' login, the admin's,
# the API's token endpoint and any future one. It locks out an address, and
# separately a username, after LOGIN_FAILURE_LIMIT failed logins, for
# LOGIN_LOCKOUT_MINUTES; during a lockout even the right password is refused.
AUTHENTICATION_BACKENDS = [
    # First, as django-axes requires: refuses a locked-out login before any check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # The single-use sign-in links sent by email (django-sesame).
    "sesame.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "photoevent.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "photoevent.logins.lockout_response"
# Failed attempts are kept (the admin lists them, `manage.py axes_reset`
# clears them); the log of every successful login is personal data we do not need.
AXES_DISABLE_ACCESS_LOG = True
# Request bodies of the login and sign-up endpoints, refused above this size
# from Content-Length before they are read.
LOGIN_MAX_BODY_BYTES = env_int("LOGIN_MAX_BODY_BYTES", 16 * 1024, minimum=1024)

# API tokens (django-rest-knox, gallery.tokens): stored as digests, ended by a
# password change, logout or account deletion. A photographer's folder watcher
# keeps one token through several events, so the default lasts a month.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 30, minimum=1)
KNOX_TOKEN_MODEL = "gallery.ApiToken"
# knox's own migrations create its default token table even though the model
# is swapped for gallery.ApiToken; without them no such table exists, so no
# stray table keeps a foreign key to the users.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "TOKEN_TTL": datetime.timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery-home"
LOGOUT_REDIRECT_URL = "gallery-home"

# --- Guests, sign-in links and alerts by email --------------------------------

# A guest (an attendee without a password) stays signed in this long on a device.
GUEST_SESSION_DAYS = env_int("GUEST_SESSION_DAYS", 30, minimum=1)
# Emailed sign-in links work once, within this many minutes, and only while the
# address they were sent to is still the account's.
SESAME_MAX_AGE = env_int("SIGN_IN_LINK_MINUTES", 15, minimum=1) * 60
SESAME_ONE_TIME = True
SESAME_INVALIDATE_ON_EMAIL_CHANGE = True
# Emails are written by queue tasks, outside any request: links in them start with this.
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
if urlparse(SITE_URL).scheme not in {"http", "https"} or not urlparse(SITE_URL).netloc:
    raise ImproperlyConfigured(f"SITE_URL must be an http(s):// URL, got {SITE_URL!r}")
# News of new photos: at most one digest per attendee every ALERT_MIN_INTERVAL
# minutes; the first waits ALERT_BATCH_DELAY seconds so that a batch of photos
# makes one email; none later than ALERT_DAYS after the event's date.
ALERT_MIN_INTERVAL = env_int("ALERT_MIN_INTERVAL", 30, minimum=1)
ALERT_BATCH_DELAY = env_int("ALERT_BATCH_DELAY", 120, minimum=0)
ALERT_DAYS = env_int("ALERT_DAYS", 14, minimum=0)
# A digest that cannot be sent is tried this many times in all, with backoff.
ALERT_MAX_ATTEMPTS = env_int("ALERT_MAX_ATTEMPTS", 5, minimum=1)
ALERT_RETRY_BASE_DELAY = env_float("ALERT_RETRY_BASE_DELAY", 60.0, minimum=0.0)

# Django's email framework: the console by default; "smtp" with the EMAIL_*
# variables; or the dotted path of any backend, such as django-anymail's
# ("anymail.backends.mailgun.EmailBackend") with its ANYMAIL_* variables.
EMAIL_BACKEND = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}.get(env_str("EMAIL_BACKEND", "console").strip(), env_str("EMAIL_BACKEND").strip())
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "photoevent <noreply@localhost>")
# ANYMAIL_MAILGUN_API_KEY=... becomes ANYMAIL["MAILGUN_API_KEY"], and so on for every provider.
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}

# Pages follow the visitor's Accept-Language or the footer's choice (a
# cookie); LANGUAGE_CODE is the language for everyone else, and for emails and
# texts written outside a request. French by default: the guests speak French.
LANGUAGES = [("fr", "Français"), ("en", "English")]
LANGUAGE_CODE = env_choice("LANGUAGE_CODE", "fr", tuple(code for code, _name in LANGUAGES))
LOCALE_PATHS = [BASE_DIR / "locale"]
# A year, so that a guest who chose a language keeps it for the whole event.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django_q": {"level": LOG_LEVEL, "propagate": True, "handlers": []}},
}
