"""Run this package's tests on one intra-op thread, and put the thread count back after
(see tests/threads.py for why)."""

from __future__ import annotations

import pytest
from threads import one_thread_fixture

one_thread = pytest.fixture(autouse=True, scope="module")(one_thread_fixture)
