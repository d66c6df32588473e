"""Run this package's tests on one intra-op thread, and put the thread count back after
(see tests/threads.py for why)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """One intra-op thread (tests/conftest.py's one_thread)."""
    yield
