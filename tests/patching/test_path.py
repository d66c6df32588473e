"""Path patching: fast engine against the reference, and cases whose answer is known."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel
from mechscope.errors import InputError
from mechscope.patching import activation_patching
from mechscope.patching.path import HeadInput, path_patching, path_patching_reference


def test_fast_equals_reference(tiny, task):
    last = tiny.cfg.n_layers - 1
    receivers = [HeadInput(last, 1, "q"), HeadInput(last, 0, "v")]
    for target in (receivers, "logits"):
        fast = path_patching(tiny, task, receivers=target, progress=False)
        slow = path_patching_reference(tiny, task, receivers=target)
        torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)


def test_last_layer_senders_to_logits_equal_activation_patching(tiny, task):
    """Nothing but the last MLP lies after a last-layer head, and both methods recompute
    it: its path to the logits is its whole effect."""
    last = tiny.cfg.n_layers - 1
    path = path_patching(tiny, task, receivers="logits", layers=[last], progress=False)
    exact = activation_patching(tiny, task, what="heads", direction="noise", layers=[last], progress=False)
    torch.testing.assert_close(path.values, exact.values, atol=1e-4, rtol=0)


def test_a_query_that_reads_nothing_receives_nothing(tokenizer, make_task):
    """With layer 1's query projection zeroed (q = its bias: the same for every input),
    no sender can act through layer-1 queries, while values still carry effects."""
    model = HookedModel(tiny_hf_model("qwen2-gqa"), tokenizer)
    task = make_task(model)
    with torch.no_grad():
        model.adapter.in_block(1, "self_attn.q_proj").weight.zero_()
    query = path_patching(model, task, receivers=[HeadInput(1, h, "q") for h in range(4)], progress=False)
    value = path_patching(model, task, receivers=[HeadInput(1, h, "v") for h in range(2)], progress=False)
    torch.testing.assert_close(query.effects, torch.zeros_like(query.effects), atol=1e-5, rtol=0)
    assert value.effects.abs().max() > 1e-3


def test_bad_receivers(tiny, task):
    with pytest.raises(InputError, match="layer 0 have no sender"):
        path_patching(tiny, task, receivers=[HeadInput(0, 0, "q")])
    with pytest.raises(InputError, match="outside the model"):
        path_patching(tiny, task, receivers=[HeadInput(1, 99, "q")])
    with pytest.raises(InputError, match="input must be one of"):
        HeadInput(1, 0, "z")


def test_receivers_at_one_position(tiny, task):
    """Receiving only at the final position (as Wang et al. patch the name movers'
    queries at END): the fast path equals the reference."""
    last = tiny.cfg.n_layers - 1
    end = task.clean.ids.shape[1] - 1
    at_end = [HeadInput(last, h, "q", positions=(end,)) for h in range(tiny.cfg.n_heads)]
    fast = path_patching(tiny, task, receivers=at_end, progress=False)
    slow = path_patching_reference(tiny, task, receivers=at_end)
    torch.testing.assert_close(fast.values, slow.values, atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="empty positions"):
        path_patching(tiny, task, receivers=[HeadInput(last, 0, "q", positions=())])
