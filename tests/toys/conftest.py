"""Toy-model tests run on one thread (tiny models run fastest so; two spin on a shared machine)."""

from __future__ import annotations

import pytest
from threads import one_thread_fixture

one_thread = pytest.fixture(autouse=True, scope="module")(one_thread_fixture)
