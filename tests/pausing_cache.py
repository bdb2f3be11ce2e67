"""A local-memory cache that pauses the process, once, when an apply reports `at` percent or more
(core/progress.py): the records are written and the transaction is open. It first creates the
`marker` file, so a test knows the moment has come."""
import time
from pathlib import Path

from django.core.cache.backends.locmem import LocMemCache


class PausingCache(LocMemCache):
    def __init__(self, name, params):
        options = params.get("OPTIONS", {})
        self.marker = options.get("marker") or ""
        self.at = options.get("at", 40)
        self.seconds = options.get("seconds", 60)
        super().__init__(name, {**params, "OPTIONS": {}})

    def set(self, key, value, *args, **kwargs):
        super().set(key, value, *args, **kwargs)
        if (self.marker and "progress:balance-import-apply" in key and isinstance(value, int) and value >= self.at
                and not Path(self.marker).exists()):
            Path(self.marker).touch()
            time.sleep(self.seconds)
