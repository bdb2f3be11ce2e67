"""`assert_consistent()`: end a test by proving the invariants of DESIGN.md hold on the test
database (the same checker as `python manage.py check_consistency`)."""
from __future__ import annotations

import pytest

from core.selectors.consistency import consistency_violations


def assert_consistent() -> None:
    """Fail the test listing every violated invariant, one per line."""
    __tracebackhide__ = True
    violations = consistency_violations()
    if violations:
        lines = "\n".join(f"  {v}" for v in violations)
        count = f"{len(violations)} consistency violation" + ("" if len(violations) == 1 else "s")
        pytest.fail(f"{count}:\n{lines}")
