"""Settings for Clearance. Every value that differs between machines comes from the environment
(see .env.example); production differs from development only by those values."""
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
    FINANCE_HOLD_THRESHOLD=(float, 0),
    FINANCE_AUTO_CLEAR=(bool, True),
    GOWN_REQUIRES_COMPLETED=(bool, True),
    GOWN_RETURN_DAYS=(int, 14),
    MAX_RESUBMISSIONS=(int, 3),
    TRUST_X_FORWARDED_FOR=(bool, False),
    Q_WORKERS=(int, 2),
    Q_TIMEOUT=(int, 600),
    HEALTH_REQUIRE_WORKERS=(bool, False),
    BALANCE_IMPORT_CONFIRM_WAIT=(float, 5),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me" if DEBUG else "")
# Without one (DEBUG off), serving stops at start-up with one line: clearance_admin/startup.py.
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

# Production posture: with DEBUG off, HTTPS only by default. Each can be turned off from the
# environment, e.g. for an intranet served on plain HTTP (SECURE_SSL_REDIRECT=false,
# SESSION_COOKIE_SECURE=false, CSRF_COOKIE_SECURE=false, SECURE_HSTS_SECONDS=0).
_https = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_https)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_https)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_https)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if _https else 0)
# Off unless asked for: Clearance is one host of the university's domain, and HSTS for every
# subdomain (or the browsers' preload list, which cannot be undone quickly) would bind the other
# hosts too. Their deploy checks (W005, W021) are silenced for that reason.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# behind a proxy that terminates TLS and says so in X-Forwarded-Proto (the usual set-up)
SECURE_PROXY_SSL_HEADER = (("HTTP_X_FORWARDED_PROTO", "https") if env.bool("SECURE_PROXY_SSL_HEADER", default=_https)
                           else None)
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]   # a load balancer's health probe and Prometheus on plain HTTP

# Content-Security-Policy (django-csp) on every page: only this origin's scripts, styles, fonts and
# images; nothing may frame the sites, no plugins, forms post only here. 'unsafe-eval': unfold's
# Alpine.js evaluates its x-data attributes; 'unsafe-inline' styles: Tailwind's and Alpine's style
# attributes. No inline script is allowed. Stored files are served with their own, stricter policy
# ("sandbox"), which this one does not replace.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

INSTALLED_APPS = [
    # unfold and its contrib apps come before the packages they theme
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "unfold.contrib.simple_history",
    "unfold.contrib.guardian",
    # no autodiscover: every site registers its own ModelAdmins (clearance_admin/<site>.py); the
    # default admin.site is never routed, and the admin modules packages bring for it would only be
    # imported (simplejwt's reads SECRET_KEY on import, which commands that serve nobody lack)
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "guardian",
    "simple_history",
    "import_export",
    "django_q",
    "core",
    "csp",
]

MIDDLEWARE = [
    "clearance_admin.observability.RequestLogMiddleware",      # first: the request id, its log line, metrics
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.permissions.ReviewScopeCacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "core.history.AuditContextMiddleware",
]

ROOT_URLCONF = "clearance_admin.urls"
WSGI_APPLICATION = "clearance_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clearance_admin" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"compact_list": "clearance_admin.compact"},
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the task worker writes. Write transactions begin
    # IMMEDIATE: SQLite has no SELECT … FOR UPDATE, so a transaction that reads and then writes
    # must hold the write lock from its first statement, or two of them decide on the same rows
    # (and the second fails with "database is locked" instead of waiting its turn).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A worker's locks and claims die with its connection (core/locks.py). The server notices a
    # killed process at once; these keepalives make it notice a host that vanished from the
    # network within about a minute and a half too.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", "-c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3")
# Seconds a connection is kept between requests (0: one per request, the safe default behind
# PgBouncer); CONN_HEALTH_CHECKS makes a kept connection that died be replaced, not fail a request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A cache every process can see (the task cluster's statistics are read by /health/).
# Nothing depends on it but figures (import progress, cluster statistics): a cache that is down
# costs at most a second per call (the timeouts) and a figure; see core/progress.py.
if env("REDIS_URL", default=""):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": env("REDIS_URL"),
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(BASE_DIR / "var" / "cache")}}

AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; nothing here is public but /verify/
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["clearance_admin.formats"]      # 24-hour times everywhere (clearance_admin/formats)
TIME_ZONE = env("TIME_ZONE", default="Africa/Nairobi")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
# Stored files (evidence, receipts, balance import files; README "Files on several hosts"). No URL
# serves them directly: each site's download view streams them from the storage after its checks,
# so MEDIA_URL is never routed. A local folder by default; an S3-compatible bucket (django-storages)
# with STORAGE_BACKEND=s3, or when AWS_STORAGE_BUCKET_NAME is set: what web servers and task workers
# on several hosts need, since each host's MEDIA_ROOT is its own.
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
STORAGE_BACKEND = env("STORAGE_BACKEND", default="s3" if env("AWS_STORAGE_BUCKET_NAME", default="") else "local")
if STORAGE_BACKEND == "s3":
    _s3 = {
        "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
        "endpoint_url": env("AWS_S3_ENDPOINT_URL", default="") or None,      # MinIO, Ceph, … ; empty: AWS
        "region_name": env("AWS_S3_REGION_NAME", default="") or None,
        "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default="") or None,  # "path" for most non-AWS
        "location": env("AWS_LOCATION", default=""),                      # a prefix inside the bucket
        "default_acl": "private",
        "querystring_auth": False,      # never handed out as URLs: the download views stream them
        "file_overwrite": False,
    }
    # empty: boto3 finds credentials itself (instance role, ~/.aws, its own environment variables)
    _s3.update({k: env(var) for k, var in (("access_key", "AWS_ACCESS_KEY_ID"), ("secret_key", "AWS_SECRET_ACCESS_KEY"))
                if env(var, default="")})
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3}
elif STORAGE_BACKEND == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}   # at MEDIA_ROOT
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND={STORAGE_BACKEND!r}: use local or s3.")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Backups (README "Backups"): `manage.py backup` writes the database and every stored file into one
# archive, to the folder BACKUP_DIR, or with BACKUP_STORAGE=s3 to a bucket (BACKUP_S3_BUCKET, by
# default the files' own) under BACKUP_PREFIX, through the STORAGES alias "backups". The newest
# BACKUP_KEEP archives are kept (0: all). A django-q schedule runs it daily at BACKUP_TIME (local
# time, HH:MM; empty: no schedule). Archives are built in BACKUP_TMP_DIR (empty: the system's).
BACKUP_DIR = Path(env("BACKUP_DIR", default=str(BASE_DIR / "var" / "backups")))
BACKUP_STORAGE = env("BACKUP_STORAGE", default="local")
BACKUP_PREFIX = env("BACKUP_PREFIX", default="backups").strip("/")
BACKUP_KEEP = env.int("BACKUP_KEEP", default=14)
BACKUP_TIME = env("BACKUP_TIME", default="02:30")
BACKUP_TMP_DIR = env("BACKUP_TMP_DIR", default="")
BACKUP_PG_BIN = env("BACKUP_PG_BIN", default="")   # a folder holding pg_dump, pg_restore, psql; empty: PATH
if BACKUP_STORAGE == "s3":
    _backup_s3 = {**(_s3 if STORAGE_BACKEND == "s3" else {
        "default_acl": "private", "querystring_auth": False,
        "endpoint_url": env("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env("AWS_S3_REGION_NAME", default="") or None,
        "addressing_style": env("AWS_S3_ADDRESSING_STYLE", default="") or None,
        **{k: env(var) for k, var in (("access_key", "AWS_ACCESS_KEY_ID"), ("secret_key", "AWS_SECRET_ACCESS_KEY"))
           if env(var, default="")}})}
    _backup_s3.update(bucket_name=env("BACKUP_S3_BUCKET", default=_backup_s3.get("bucket_name") or "") or
                      env("AWS_STORAGE_BUCKET_NAME"),
                      location=BACKUP_PREFIX, file_overwrite=False)
    STORAGES["backups"] = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _backup_s3}
elif BACKUP_STORAGE != "local":
    raise ImproperlyConfigured(f"BACKUP_STORAGE={BACKUP_STORAGE!r}: use local or s3.")
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000  # bulk actions post one field per selected row

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="clearance@university.test")

# The task queue: django-q2 with the ORM broker (recommended, README "When a worker dies"); Redis
# when Q_REDIS_URL is set. `timeout`: a task still running after it is stopped (its job ends failed).
# `retry`: the ORM broker delivers a task again when no worker acknowledged it this long after
# handing it out (its worker died); longer than `timeout`, so a task still running is never run
# twice. `max_attempts` 1 / `ack_failures`: a task that failed is not run again by itself (its job
# says why and the officer decides); only one whose worker vanished comes back, and finds its job
# ended by the sweep. The Redis broker never delivers a task twice: one its worker took down with it
# is lost, and the sweep ends its job after JOB_START_MAX_AGE.
Q_CLUSTER = {
    "name": "clearance",
    "workers": env("Q_WORKERS"),
    "timeout": env("Q_TIMEOUT"),
    "retry": env("Q_TIMEOUT") + 60,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "cache": "default",
    "label": "Task queue",
}
if env("Q_REDIS_URL", default=""):
    Q_CLUSTER["redis"] = env("Q_REDIS_URL")
else:
    Q_CLUSTER["orm"] = "default"

# Jobs whose worker died (core/services/jobs.py): a claim whose worker is gone ends at the next
# sweep (every minute); these are the last resorts, in seconds. A claim older than the task timeout
# (and a minute) is taken to have stopped; a job nobody took up fails once the ORM broker would have
# delivered it again (retry) and a minute more.
JOB_CLAIM_MAX_AGE = env.int("JOB_CLAIM_MAX_AGE", default=Q_CLUSTER["timeout"] + 60)
JOB_START_MAX_AGE = env.int("JOB_START_MAX_AGE", default=Q_CLUSTER["retry"] + 60)
# SQLite only: where the lock files of core/locks.py live (default: `<database>-locks/` beside it).
LOCKS_DIR = env("LOCKS_DIR", default="")
# Confirming an import while another applies: wait this many seconds for it, then refuse (README).
BALANCE_IMPORT_CONFIRM_WAIT = env("BALANCE_IMPORT_CONFIRM_WAIT")

# Domain settings (DESIGN.md, workflow rules)
FINANCE_HOLD_THRESHOLD = env("FINANCE_HOLD_THRESHOLD")
FINANCE_AUTO_CLEAR = env("FINANCE_AUTO_CLEAR")
GOWN_REQUIRES_COMPLETED = env("GOWN_REQUIRES_COMPLETED")
# the expected return date the gown store's issue form offers: this many days after the issue
GOWN_RETURN_DAYS = env("GOWN_RETURN_DAYS")
MAX_RESUBMISSIONS = env("MAX_RESUBMISSIONS")
# Certificates (core/certificates_pdf.py): the name and crest printed on each PDF, and the public
# address its QR code and verification line point to (`<PUBLIC_URL>/verify/<code>/`).
UNIVERSITY_NAME = env("UNIVERSITY_NAME", default="Clearance University")
CERTIFICATE_CREST = Path(env("CERTIFICATE_CREST", default=str(BASE_DIR / "core" / "static" / "core" / "crest.png")))
PUBLIC_URL = env("PUBLIC_URL", default=env("SITE_URL", default="http://127.0.0.1:8000")).rstrip("/")
# The longest a reviewer may lend their office to a colleague, in days (a delegation starts today or later).
DELEGATION_MAX_DAYS = env.int("DELEGATION_MAX_DAYS", default=365)
# The daily schedules (core/services/reminders.py), local times HH:MM (empty: no schedule): each
# reviewer's digest, overdue items to office heads, ended cycles closed.
DIGEST_TIME = env("DIGEST_TIME", default="07:00")
ESCALATION_TIME = env("ESCALATION_TIME", default="08:00")
CYCLE_CLOSE_TIME = env("CYCLE_CLOSE_TIME", default="00:30")
# Emails of notifications (core/services/notifications.py): tries before giving up (2, 4, 8 … minutes apart).
NOTIFICATION_EMAIL_ATTEMPTS = env.int("NOTIFICATION_EMAIL_ATTEMPTS", default=5)
# Logins (clearance_admin/accounts.py): an invitation's or sign-up's one-time link lasts this many
# days (a forgotten-password link: PASSWORD_RESET_TIMEOUT, 3 days); each page that sends a link
# takes this many requests per client address and minute.
ACCOUNT_LINK_DAYS = env.int("ACCOUNT_LINK_DAYS", default=7)
ACCOUNT_RATE_LIMIT = env.int("ACCOUNT_RATE_LIMIT", default=10)
# Exports (README "Reports and exports"): a report or list longer than this many rows is written by a
# worker and listed under "My exports" (the browser would wait too long, and a list export holds its
# rows in memory); the files are kept this many days, then deleted by the sweep.
EXPORT_BACKGROUND_ROWS = env.int("EXPORT_BACKGROUND_ROWS", default=5000)
EXPORT_KEEP_DAYS = env.int("EXPORT_KEEP_DAYS", default=7)
# The IP recorded in history and used for sign-in lockouts: the right-most address the trusted
# proxies added to X-Forwarded-For (core/history.py). 0: no proxy, the connection's address.
# TRUST_X_FORWARDED_FOR=true, the older switch, means one proxy.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if env("TRUST_X_FORWARDED_FOR") else 0)
HEALTH_REQUIRE_WORKERS = env("HEALTH_REQUIRE_WORKERS")
# /health/ shows each check's details only to superusers and to callers sending this token
# (Authorization: Bearer …); everyone else gets ok/unavailable.
HEALTH_TOKEN = env("HEALTH_TOKEN", default="")

# --- Signing in (issue 9): lockout, a throttled /verify/, a second factor ---------------------
# README "Signing in". Kept in one block so it merges apart from the rest.
from datetime import timedelta  # noqa: E402

INSTALLED_APPS += ["axes", "django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
# django-otp marks the session's verified device on request.user (after authentication); the site's
# own middleware then sends a person of any role but Student to the second-factor page until their
# session is verified; axes (last, as it asks) turns a lockout into the sign-in page answered 429.
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "django_otp.middleware.OTPMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1,
                  "clearance_admin.sites.SecondFactorMiddleware")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AUTHENTICATION_BACKENDS = ["core.signin.LockoutBackend", *AUTHENTICATION_BACKENDS]

# Lockout: AXES_FAILURE_LIMIT failed sign-ins in a row for one account from one address lock that
# pair for AXES_COOLOFF_MINUTES (0: until unlocked in /admin/); a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30)) or None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"              # the sites' sign-in form field, holding the email
AXES_USERNAME_CALLABLE = "core.signin.normalised_username"
AXES_CLIENT_IP_CALLABLE = "core.history.client_ip"  # the IP history records (TRUSTED_PROXY_COUNT)
AXES_LOCKOUT_CALLABLE = "core.signin.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_ENABLE_ADMIN = False                          # registered on /admin/ by clearance_admin.superuser
AXES_VERBOSE = False

# Public certificate lookups per client IP and minute (0: no limit).
VERIFY_RATE_LIMIT = env.int("VERIFY_RATE_LIMIT", default=30)

# Second factor (TOTP) on every site but /student/: on by default in production.
OTP_REQUIRED = env.bool("OTP_REQUIRED", default=not DEBUG)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Clearance")
OTP_RECOVERY_CODES = 10

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# history is read per object (by `id`); an index on the date would be upkeep for every historical row
SIMPLE_HISTORY_DATE_INDEX = False
SIMPLE_HISTORY_REVERT_DISABLED = False

# Logs (core/logs.py): one JSON object per line on stderr, each with the request id of the request
# (or the task a request queued) it belongs to; LOG_FORMAT=text for lines a person reads.
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logs.RequestIdFilter"}, "secrets": {"()": "core.logs.SecretFilter"}},
    "formatters": {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id", "secrets"],
                             "formatter": "text" if LOG_FORMAT == "text" else "json"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
# /metrics (clearance_admin/observability.py): for a caller with `Authorization: Bearer
# $METRICS_TOKEN`, or from these addresses or networks (comma-separated); by default this host only.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# M-PESA Daraja C2B callbacks (clearance_api/mpesa.py, README "M-PESA callbacks"): the secret part
# of their URLs (empty: the callbacks answer 404, i.e. they are off) and the addresses or networks
# they are accepted from (the client address as core.history.client_ip reads it behind
# TRUSTED_PROXY_COUNT proxies); by default the addresses Safaricom publishes for its callbacks.
MPESA_CALLBACK_SECRET = env("MPESA_CALLBACK_SECRET", default="")
MPESA_ALLOWED_IPS = env.list("MPESA_ALLOWED_IPS", default=[
    "196.201.214.200", "196.201.214.206", "196.201.213.114", "196.201.214.207", "196.201.214.208",
    "196.201.213.44", "196.201.212.127", "196.201.212.138", "196.201.212.129", "196.201.212.136",
    "196.201.212.74", "196.201.212.69"])

# One unfold configuration per site (clearance_admin/sites.py names them). Sidebar links reverse
# through each site's own namespace.
def _unfold(title, symbol, dashboard, navigation, **extra):
    return {
        "SITE_TITLE": title,
        "SITE_HEADER": title,
        "SITE_SYMBOL": symbol,
        "SITE_FAVICONS": [{"rel": "icon", "sizes": "32x32", "type": "image/x-icon",
                           "href": lambda request: static("core/favicon.ico")}],
        "STYLES": [lambda request: static("core/compact_list.css")],   # clearance_admin/compact.py
        "SHOW_HISTORY": True,
        "SHOW_VIEW_ON_SITE": False,
        "DASHBOARD_CALLBACK": f"clearance_admin.dashboards.{dashboard}",
        "SIDEBAR": {"show_search": False, "show_all_applications": False, "navigation": navigation},
        **extra,
    }


def _link(title, icon, url_name, *, query="", **extra):
    link = format_lazy("{}?{}", reverse_lazy(url_name), query) if query else reverse_lazy(url_name)
    return {"title": title, "icon": icon, "link": link, **extra}


_GOWN = {"permission": "clearance_admin.staff.gown_sidebar_permission"}


UNFOLD_STAFF = _unfold("Clearance — offices", "fact_check", "staff_dashboard", [
    {"title": _("My office"), "items": [
        _link(_("Dashboard"), "dashboard", "staff:index"),
        _link(_("Clearance queue"), "checklist", "staff:core_clearanceapproval_changelist",
              badge="clearance_admin.staff.queue_badge"),
        _link(_("Holds"), "block", "staff:core_hold_changelist"),
        _link(_("Hold imports"), "upload_file", "staff:core_holdimport_changelist"),
        _link(_("Delegations"), "swap_horiz", "staff:core_delegation_changelist"),
        _link(_("Reports"), "summarize", "staff:reports"),
        _link(_("My exports"), "download", "staff:core_exportfile_changelist"),
    ]},
    # the gown store: only for the GOWN office's reviewers (permissions.may_run_gown_store)
    {"title": _("Gown store"), "items": [
        _link(_("Issue or take back"), "qr_code_scanner", "staff:core_gownissuance_scan", **_GOWN,
              active="clearance_admin.staff.gowns.sidebar_active_scan"),
        _link(_("Gowns out"), "checkroom", "staff:core_gownissuance_changelist", query="view=out", **_GOWN,
              active="clearance_admin.staff.gowns.sidebar_active_out"),
        _link(_("Overdue returns"), "alarm", "staff:core_gownissuance_changelist", query="view=overdue", **_GOWN,
              active="clearance_admin.staff.gowns.sidebar_active_overdue"),
        _link(_("Deposits held"), "savings", "staff:core_gownissuance_changelist", query="view=held", **_GOWN,
              active="clearance_admin.staff.gowns.sidebar_active_held"),
    ]},
])
UNFOLD_FINANCE = _unfold("Clearance — finance", "payments", "finance_dashboard", [
    {"title": _("Finance"), "items": [
        _link(_("Dashboard"), "dashboard", "finance:index"),
        _link(_("Finance records"), "account_balance_wallet", "finance:core_financerecord_changelist"),
        _link(_("Finance holds"), "block", "finance:core_hold_changelist"),
        _link(_("Payments"), "receipt_long", "finance:core_payment_changelist"),
        _link(_("Verify by M-PESA code"), "qr_code_scanner", "finance:core_payment_verify_by_code"),
        _link(_("Reconcile M-PESA statement"), "fact_check", "finance:core_payment_reconcile_statement"),
        _link(_("M-PESA reconciliations"), "history", "finance:core_statementreconciliation_changelist"),
        _link(_("M-PESA confirmations"), "phone_iphone", "finance:core_mpesaconfirmation_changelist"),
        _link(_("Balance imports"), "upload_file", "finance:core_balanceimport_changelist"),
        _link(_("Reports"), "summarize", "finance:reports"),
        _link(_("My exports"), "download", "finance:core_exportfile_changelist"),
    ]},
])
UNFOLD_REGISTRY = _unfold("Clearance — registry", "school", "registry_dashboard", [
    {"title": _("Registry"), "items": [
        _link(_("Dashboard"), "dashboard", "registry:index"),
        _link(_("Clearance requests"), "assignment_turned_in", "registry:core_clearancerequest_changelist"),
        _link(_("Students"), "groups", "registry:core_student_changelist"),
        _link(_("Graduand imports"), "upload_file", "registry:core_studentimport_changelist"),
        _link(_("Cycles"), "event", "registry:core_clearancecycle_changelist"),
        _link(_("Certificates"), "workspace_premium", "registry:core_certificate_changelist"),
        _link(_("Reports"), "summarize", "registry:reports"),
        _link(_("My exports"), "download", "registry:core_exportfile_changelist"),
    ]},
])
UNFOLD_STUDENT = _unfold("My clearance", "verified_user", "student_dashboard", [
    {"title": _("My clearance"), "items": [
        _link(_("Progress"), "dashboard", "student:index"),
        _link(_("Notifications"), "notifications", "student:core_notification_changelist",
              badge="clearance_admin.student.unread_badge"),
    ]},
], SHOW_HISTORY=False)
UNFOLD = _unfold("Clearance — administration", "admin_panel_settings", "admin_dashboard", [
    {"title": _("People"), "items": [
        _link(_("Users"), "person", "admin:core_user_changelist"),
        _link(_("Roles"), "group", "admin:auth_group_changelist"),
        _link(_("Delegations"), "swap_horiz", "admin:core_delegation_changelist"),
    ]},
    {"title": _("Clearance"), "items": [
        _link(_("Cycles"), "event", "admin:core_clearancecycle_changelist"),
        _link(_("Departments"), "apartment", "admin:core_department_changelist"),
        _link(_("Requests"), "assignment_turned_in", "admin:core_clearancerequest_changelist"),
        _link(_("Approvals"), "checklist", "admin:core_clearanceapproval_changelist"),
        _link(_("Holds"), "block", "admin:core_hold_changelist"),
        _link(_("Students"), "groups", "admin:core_student_changelist"),
        _link(_("Schools"), "account_balance", "admin:core_school_changelist"),
        _link(_("Programmes"), "menu_book", "admin:core_programme_changelist"),
    ]},
    {"title": _("Money and things"), "items": [
        _link(_("Finance records"), "account_balance_wallet", "admin:core_financerecord_changelist"),
        _link(_("Payments"), "receipt_long", "admin:core_payment_changelist"),
        _link(_("Balance imports"), "upload_file", "admin:core_balanceimport_changelist"),
        _link(_("Hold imports"), "upload_file", "admin:core_holdimport_changelist"),
        _link(_("Graduand imports"), "upload_file", "admin:core_studentimport_changelist"),
        _link(_("Gowns"), "checkroom", "admin:core_gownissuance_changelist"),
        _link(_("Certificates"), "workspace_premium", "admin:core_certificate_changelist"),
    ]},
    {"title": _("Task queue"), "items": [
        _link(_("Queued tasks"), "pending_actions", "admin:django_q_ormq_changelist"),
        _link(_("Schedules"), "schedule", "admin:django_q_schedule_changelist"),
        _link(_("Successful tasks"), "task_alt", "admin:django_q_success_changelist"),
        _link(_("Failed tasks"), "error", "admin:django_q_failure_changelist"),
        _link(_("My exports"), "download", "admin:core_exportfile_changelist"),
    ]},
])

# Signing in (issue 9): the lockout lists in /admin/'s sidebar, under People.
UNFOLD["SIDEBAR"]["navigation"][0]["items"] += [
    _link(_("Sign-in lockouts"), "lock_person", "admin:axes_accessattempt_changelist"),
    _link(_("Failed sign-ins"), "history", "admin:axes_accessfailurelog_changelist"),
]

# --- The API (issue 15): /api/, Django REST Framework -------------------------------------------
# README "The API". Kept in one block so it merges apart from the rest.
INSTALLED_APPS += ["rest_framework", "rest_framework_simplejwt.token_blacklist", "rest_framework_api_key",
                   "django_filters", "drf_spectacular", "drf_spectacular_sidecar", "clearance_api"]
REST_FRAMEWORK = {
    # a person signs in for a JWT (clearance_api/auth.py); a system sends its API key, which acts as
    # the user it is bound to (clearance_api/keys.py). No session authentication: the API never
    # reads the sites' cookies, so no request to it can be forged from a page (no CSRF to check).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication",
                                       "clearance_api.keys.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "clearance_api.pagination.Cursor",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["clearance_api.throttling.PerClientThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_RATE_USER", default="120/min"),      # per signed-in person
        "key": env("API_RATE_KEY", default="600/min"),        # per API key (a system sends more)
        "anon": env("API_RATE_ANON", default="30/min"),       # per client address, not signed in
        "signin": env("API_RATE_SIGNIN", default="10/min"),   # token requests per client address
    },
    "EXCEPTION_HANDLER": "clearance_api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "clearance_api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,     # ?format= belongs to the reports (csv/xlsx), not to DRF
}
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=200)   # ?page_size= above this is cut to it
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("API_ACCESS_MINUTES", default=10)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("API_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,          # each refresh hands out a new refresh token …
    "BLACKLIST_AFTER_ROTATION": True,       # … and the old one cannot be used again
    "UPDATE_LAST_LOGIN": True,
    "CHECK_REVOKE_TOKEN": True,             # a password change ends every token issued before it
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Clearance API",
    "DESCRIPTION": "Graduation clearance for students' apps and offices' systems. Every error is "
                   '`{"detail": "…", "errors": {"field": ["…"]}}`. README "The API".',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",           # Swagger UI's files from this origin (the CSP is 'self')
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        # one name per status choice set (several components have a `status`)
        "ApprovalStatusEnum": "core.models.ClearanceApproval.Status",
        "HoldStatusEnum": "core.models.Hold.Status",
        "ClearanceStatusEnum": "core.models.ClearanceRequest.Status",
        "HoldImportStatusEnum": "core.models.HoldImport.Status",
        "BalanceImportStatusEnum": "core.models.BalanceImport.Status",
    },
    "TAGS": [{"name": "auth", "description": "Signing in: tokens for people; systems send an API key."},
             {"name": "students", "description": "A student's own clearance."},
             {"name": "notifications", "description": "Anyone's own notifications."},
             {"name": "approvals", "description": "The offices' clearance queue and decisions."},
             {"name": "holds", "description": "Holds of my offices, and an office system's list of holds."},
             {"name": "balances", "description": "The finance system's fee balances."},
             {"name": "reports", "description": "The registry's reports (and finance's, offices')."},
             {"name": "gowns", "description": "The gown store."},
             {"name": "M-PESA", "description": "Daraja's C2B callbacks (Safaricom calls these)."}],
}
