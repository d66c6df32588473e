"""Run this package's tests on one intra-op thread, and put the thread count back after.

On the shared 2-core machine two threads spin against other processes: a tiny model's
head_roles took 0.45 s on two threads and 0.006 s on one; smollm2-135m's 23 s and 6 s.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")  # module: also covers module-scoped fixtures
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
