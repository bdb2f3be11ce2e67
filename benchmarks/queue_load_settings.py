"""Settings for benchmarks/queue_load.py's gunicorn: the project's own, plus a throwaway admin site
with Django's default changelist of ClearanceApproval at /baseline-admin/ (benchmarks/queue_load_urls.py)
— the baseline a team would have without this project. Only the benchmark mounts it."""
from clearance_admin.settings import *  # noqa: F401,F403

ROOT_URLCONF = "benchmarks.queue_load_urls"
