"""The tiny IOI-like task of the patching tests, for circuit tests."""

from __future__ import annotations

import pytest
from tiny import tiny_task


@pytest.fixture
def task(tiny):
    return tiny_task(tiny)
