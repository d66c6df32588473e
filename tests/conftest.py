"""Shared fixtures: tiny random models of every family, and smollm2-135m loaded once."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# Every test runs offline; a hub lookup must fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Commands record their runs in the results store: never the user's own during tests.
os.environ["MECHSCOPE_STORE"] = str(Path(tempfile.mkdtemp(prefix="mechscope-test-store-")) / "results.db")
sys.path.insert(0, str(Path(__file__).parent))

from tiny import ARCHS, tiny_hf_model, tiny_tokenizer  # noqa: E402

from mechscope import HookedModel  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture
def tiny(arch, tokenizer) -> HookedModel:
    """A tiny random model of each family (sdpa attention), wrapped."""
    return HookedModel(tiny_hf_model(arch), tokenizer, name=arch)


@pytest.fixture(scope="session")
def smollm2():
    """smollm2-135m, loaded once for the whole session (dequantized on first use)."""
    import mechscope

    try:
        return mechscope.load_model("smollm2-135m")
    except mechscope.MechscopeError as error:  # package not installed
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def gemma3():
    """gemma3-270m, loaded once for the session (slow tests only: ~85 s to dequantize the first time)."""
    import mechscope

    try:
        return mechscope.load_model("gemma3-270m")
    except mechscope.MechscopeError as error:  # package not installed
        pytest.skip(str(error))


@pytest.fixture(scope="module")  # module: also covers module-scoped fixtures
def one_thread():
    """One intra-op thread for the module, the count put back after (tests/threads.py says
    why); a package opts in with an autouse fixture that requests this one."""
    from threads import single_thread

    with single_thread():
        yield
