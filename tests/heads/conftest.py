"""Run this package's tests on one intra-op thread, and put the thread count back after.

On the shared 2-core machine two threads spin against other processes: a tiny model's
head_roles took 0.45 s on two threads and 0.006 s on one; smollm2-135m's 23 s and 6 s.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """One intra-op thread (tests/conftest.py's one_thread)."""
    yield
