"""This package's tests run on one intra-op thread (see tests/conftest.py's one_thread)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    yield
