"""What pytest uses: fast hashing, tasks run inline, mail kept in memory."""
from .settings import *  # noqa: F401,F403
from .settings import env

SECRET_KEY = "test-secret-of-the-suite-long-enough-for-hmac-sha256"   # ≥ 32 bytes: it signs the API's tokens
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
DATABASES = {"default": env.db("TEST_DATABASE_URL", default="sqlite:///:memory:")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
Q_CLUSTER = {"name": "clearance-test", "sync": True, "orm": "default", "cache": "default",
             "timeout": 60, "retry": 120}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FINANCE_HOLD_THRESHOLD = 0
FINANCE_AUTO_CLEAR = True
GOWN_REQUIRES_COMPLETED = True
MAX_RESUBMISSIONS = 3
# the test client and the browser tests' live server speak plain HTTP
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
SECURE_PROXY_SSL_HEADER = None
# the suite signs in with force_login()/login(); the second-factor tests turn it on themselves
OTP_REQUIRED = False
