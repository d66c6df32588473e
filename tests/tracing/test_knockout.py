"""Attention knockout and attribute extraction (Geva et al. 2023)."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.facts import Fact
from mechscope.tracing import SOURCES, attention_knockout, attention_knockout_reference, attribute_extraction
from mechscope.tracing.knockout import blocked_layers

FACTS = [
    Fact(known_id=0, prompt="the eiffel tower is located in city of", subject="eiffel tower", attribute="paris"),
    Fact(known_id=1, prompt="mary went to the store", subject="mary", attribute="rome"),  # shorter: left padding
]


def test_fast_knockout_equals_reference(tiny):
    fast = attention_knockout(tiny, FACTS, window=1)
    slow = attention_knockout_reference(tiny, FACTS, window=1)
    assert fast.per_fact.abs().max() > 1e-3  # blocking changes the prediction
    torch.testing.assert_close(fast.per_fact, slow.per_fact, atol=1e-3, rtol=1e-4)  # percent
    assert fast.sources == tuple(SOURCES) and fast.change.shape == (3, tiny.cfg.n_layers)


def test_a_wide_window_blocks_every_layer(llama):
    result = attention_knockout(llama, FACTS, window=9)
    slow = attention_knockout_reference(llama, FACTS, window=9)
    torch.testing.assert_close(result.per_fact, slow.per_fact, atol=1e-3, rtol=1e-4)
    assert torch.equal(result.per_fact[:, 0], result.per_fact[:, 1])  # both windows cover layers 0 and 1
    assert result.per_fact.shape == (3, llama.cfg.n_layers, 2)
    assert 0 < result.base_prob < 1
    assert torch.isfinite(result.change).all()


def test_blocked_layers():
    assert blocked_layers(0, 9, 30) == range(0, 5)
    assert blocked_layers(10, 9, 30) == range(6, 15)
    assert blocked_layers(29, 9, 30) == range(25, 30)
    assert blocked_layers(3, 1, 30) == range(3, 4)


def test_extraction_rate_matches_reading_the_outputs(llama):
    result = attribute_extraction(llama, FACTS)
    assert result.rates.shape == (2, llama.cfg.n_layers)
    batch = llama.tokenize([f.prompt for f in FACTS], padding_side="left")
    _, cache = llama.run_with_cache(batch, names=["blocks.1.hook_mlp_out"])
    adapter = llama.adapter
    logits = adapter.module(adapter.unembed_path)(adapter.norm(None, "ln_final")(cache["blocks.1.hook_mlp_out"][:, -1]))
    answers = torch.tensor([llama.to_tokens(" " + f.attribute)[0, 0] for f in FACTS])
    assert float(result.rates[1, 1]) == pytest.approx(float((logits.argmax(-1) == answers).float().mean()))
    blocked = attribute_extraction(llama, FACTS, knockout=True)
    assert blocked.knockout and blocked.rates.shape == result.rates.shape


def test_plots_render(llama, tmp_path):
    attention_knockout(llama, FACTS).plot().savefig(tmp_path / "knockout.png")
    attribute_extraction(llama, FACTS).plot().savefig(tmp_path / "extraction.png")


def test_bad_arguments(llama):
    with pytest.raises(InputError, match="sources must be some of"):
        attention_knockout(llama, FACTS, sources=("everything",))
    with pytest.raises(InputError, match="window must be a positive integer"):
        attention_knockout(llama, FACTS, window=0)
    with pytest.raises(InputError, match="no facts"):
        attribute_extraction(llama, [])
