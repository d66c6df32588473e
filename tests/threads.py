"""One intra-op thread for tests of tiny models, with the thread count put back after.

On the shared 2-core machine two threads spin against other processes: a tiny model's
head_roles took 0.45 s on two threads and 0.006 s on one; smollm2-135m's 23 s and 6 s; the
web app's tiny investigation 51 s and 3.5 s. A package's conftest uses it as

    one_thread = pytest.fixture(autouse=True, scope="module")(one_thread_fixture)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread_fixture() -> Iterator[None]:
    """The body of a package's autouse ``one_thread`` fixture."""
    with single_thread():
        yield
