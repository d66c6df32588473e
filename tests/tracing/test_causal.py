"""Causal tracing: the fast path equals the paper's one-run-per-cell algorithm on every family."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.facts import Fact
from mechscope.tracing import (
    BUCKETS,
    TraceConfig,
    average_trace,
    causal_trace,
    causal_trace_reference,
    embedding_std,
)

FACT = Fact(known_id=0, prompt="the eiffel tower is located in city of", subject="eiffel tower", attribute="paris")
OTHER = Fact(known_id=1, prompt="when mary and john went to the store", subject="mary and john", attribute="rome")


@pytest.mark.parametrize("window, max_rows", [(2, 7), (1, 512), (2, 512)])
def test_fast_path_equals_reference(tiny, window, max_rows):
    """7 rows: a token's restorations split over runs; 512: all in one run, copies joining at
    blocks 0 and 1 (window 1: a copy restoring block 1's MLP or attention joins there)."""
    config = TraceConfig(samples=3, window=window, max_rows=max_rows)
    fast = causal_trace(tiny, FACT, config=config)
    slow = causal_trace_reference(tiny, FACT, config=config)
    assert fast.scores.std() > 1e-5  # the restorations do change the answer's probability
    torch.testing.assert_close(fast.scores, slow.scores, atol=1e-6, rtol=1e-4)
    assert fast.low == pytest.approx(slow.low, abs=1e-7) and fast.high == pytest.approx(slow.high, abs=1e-7)
    assert fast.subject_range == (1, 2) and fast.tokens[0] == "the"


def test_restoring_the_last_layer_at_the_last_token_gives_the_clean_run(tiny):
    trace = causal_trace(tiny, FACT, config=TraceConfig(samples=2, kinds=("hidden",)))
    n_layers = tiny.cfg.n_layers
    assert trace.scores[0, n_layers - 1, -1] == pytest.approx(trace.high, abs=1e-6)
    assert torch.all(trace.scores[0, :, 0] == trace.low)  # before the subject nothing changes
    assert trace.low != pytest.approx(trace.high, abs=1e-6)


def test_noise_is_seeded_and_scaled(llama):
    config = TraceConfig(samples=2, kinds=("mlp",))
    a, b = causal_trace(llama, FACT, config=config), causal_trace(llama, FACT, config=config)
    assert torch.equal(a.scores, b.scores)
    std = embedding_std(llama, [FACT])
    assert a.noise_std == pytest.approx(3 * std)
    quiet = causal_trace(llama, FACT, config=TraceConfig(samples=2, kinds=("mlp",), noise_std=0.0))
    assert quiet.low == pytest.approx(quiet.high, abs=1e-6)
    assert causal_trace(llama, FACT, config=TraceConfig(samples=2, seed=2, kinds=("mlp",))).low != a.low


def test_restoring_only_the_last_subject_token(llama):
    full = causal_trace(llama, FACT, config=TraceConfig(samples=2, window=2))
    last = causal_trace(llama, FACT, config=TraceConfig(samples=2, window=2, tokens="last-subject"))
    torch.testing.assert_close(last.scores[:, :, 2], full.scores[:, :, 2])
    assert torch.isnan(last.scores[:, :, [0, 1, 3, 7]]).all()
    reference = causal_trace_reference(llama, FACT, config=TraceConfig(samples=2, window=2, tokens="last-subject"))
    torch.testing.assert_close(reference.scores, last.scores, equal_nan=True)


def test_window_layers():
    config = TraceConfig(window=10)
    assert config.layers_of("mlp", 0, 30) == range(0, 5)
    assert config.layers_of("mlp", 12, 30) == range(7, 17)
    assert config.layers_of("attn", 29, 30) == range(24, 30)
    assert config.layers_of("hidden", 12, 30) == range(12, 13)


def test_average_over_facts(llama):
    config = TraceConfig(samples=2, window=2)
    average = average_trace(llama, [FACT, OTHER], config=config, progress=False)
    assert average.effects.shape == (3, len(BUCKETS), llama.cfg.n_layers) and average.n_facts == 2
    expected = torch.stack([t.buckets() for t in average.traces]).nanmean(0)
    torch.testing.assert_close(average.effects, expected)
    first = average.traces[0]  # subject "eiffel tower": no middle tokens, so that group is NaN for it
    assert torch.isnan(first.buckets()[:, 1]).all()
    torch.testing.assert_close(first.buckets()[:, 2], first.effects[:, :, 2])
    layer, value = average.summary()["mlp @ last subject token"]
    assert value == pytest.approx(float(average.effects[1, 2].max()))


def test_plots_render(llama, tmp_path):
    config = TraceConfig(samples=2, window=2)
    causal_trace(llama, FACT, config=config).plot().savefig(tmp_path / "trace.png")
    average_trace(llama, [FACT], config=config, progress=False).plot().savefig(tmp_path / "average.png")
    assert (tmp_path / "trace.png").stat().st_size > 5000


@pytest.mark.parametrize(
    "options, message",
    [(dict(samples=0), "samples must be an integer"), (dict(tokens="first"), "tokens must be one of"), (dict(kinds=("mlp", "heads")), "kinds must be some of"),
     (dict(noise=-1.0), "noise must be"), (dict(window=1.5), "window must be an integer")],
)
def test_bad_config(options, message):
    with pytest.raises(InputError, match=message):
        TraceConfig(**options)


def test_subject_not_in_prompt(llama):
    with pytest.raises(InputError, match="does not occur in the prompt"):
        Fact(known_id=0, prompt="the cat sat", subject="dog", attribute="mat")
