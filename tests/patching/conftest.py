"""A tiny IOI-like task that the tiny word tokenizer can express."""

from __future__ import annotations

import pytest
from tiny import tiny_task


@pytest.fixture
def task(tiny):
    return tiny_task(tiny)


@pytest.fixture
def make_task():
    return tiny_task
