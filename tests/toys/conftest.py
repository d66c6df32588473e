"""Toy-model tests run on one thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """One intra-op thread (tests/conftest.py's one_thread)."""
    yield
