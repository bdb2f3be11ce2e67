"""Settings for a real `manage.py qcluster` that tests start as a subprocess (the worker-killed
test): the test settings against the test database (TEST_DATABASE_URL), with the ORM broker
instead of running tasks inline, quick polling, a short timeout and retry (so a task whose worker
was killed comes back within the test), and a cache that pauses an apply once it has written
the finance records (tests/pausing_cache.py), so the test can kill the worker mid-apply."""
import os

from clearance_admin.settings_test import *  # noqa: F401,F403
from clearance_admin.settings_test import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "sync": False, "workers": 1, "poll": 0.1, "guard_cycle": 0.2, "timeout": 8, "retry": 9,
             "max_attempts": 1, "ack_failures": True, "catch_up": False}
CACHES = {"default": {"BACKEND": "tests.pausing_cache.PausingCache",
                      "OPTIONS": {"marker": os.environ.get("PAUSE_MARKER", ""), "at": 40, "seconds": 60}}}
