"""Re-running blocks from a layer and a position reproduces the full forward."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel
from mechscope.errors import InputError
from mechscope.hooks.replay import record_block_inputs, replay_names, run_from

PROMPTS = ["when mary and john went to the store , john gave a drink to", "the cat sat on the mat and the dog sat"]


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_run_from_any_layer_and_position_matches_the_forward(arch, tokenizer, impl):
    model = HookedModel(tiny_hf_model(arch, impl), tokenizer)
    batch = model.tokenize(PROMPTS, padding_side="left")
    with record_block_inputs(model) as inputs:
        logits, cache = model.run_with_cache(batch, names=replay_names(model))
    answer = batch.last_positions()
    real = batch.attention_mask.bool()
    for layer in range(model.cfg.n_layers):
        for start in (0, 3, 8):  # 3 lies inside the shorter prompt's padding
            with torch.no_grad():
                read = run_from(model, inputs, cache, layer=layer, start=start, copies=3, readout=answer)
                full = run_from(model, inputs, cache, layer=layer, start=start)
            torch.testing.assert_close(read, logits[torch.arange(2), answer].repeat(3, 1), atol=1e-5, rtol=0)
            torch.testing.assert_close(full[real[:, start:]], logits[:, start:][real[:, start:]], atol=1e-5, rtol=0)


def test_a_new_residual_changes_only_later_positions(tiny):
    batch = tiny.tokenize(PROMPTS, padding_side="left")
    with record_block_inputs(tiny) as inputs:
        logits, cache = tiny.run_with_cache(batch, names=replay_names(tiny))
    start = 6
    resid = cache["resid_pre", 1][:, start:].clone()
    resid[:, 2] += 1.0  # position 8
    with torch.no_grad():
        changed = run_from(tiny, inputs, cache, layer=1, start=start, resid=resid)
        expected = tiny.run_with_hooks(batch, fwd=[("blocks.1.hook_resid_pre", lambda t, hook: torch.cat(
            [t[:, :start], resid], dim=1))])
    torch.testing.assert_close(changed, expected[:, start:], atol=1e-5, rtol=0)
    torch.testing.assert_close(changed[:, :2], logits[:, start:start + 2], atol=1e-5, rtol=0)


def test_bad_arguments(tiny):
    batch = tiny.tokenize(PROMPTS, padding_side="left")
    with record_block_inputs(tiny) as inputs:
        _, cache = tiny.run_with_cache(batch, names=replay_names(tiny))
    with pytest.raises(InputError, match="readout position"):
        run_from(tiny, inputs, cache, layer=0, start=5, readout=torch.tensor([3, 13]))
    with pytest.raises(InputError, match="layer must be in"):
        run_from(tiny, inputs, cache, layer=9, start=0)
    with pytest.raises(InputError, match="rows"):
        run_from(tiny, inputs, cache, layer=0, start=0, resid=torch.zeros(1, 3, tiny.cfg.d_model))


def test_staggered_copies_equal_separate_runs(arch, tokenizer):
    """Copies joining at different blocks, each with its own residual and a hook writing
    into its rows, give what separate runs from their blocks give."""
    from mechscope.hooks.replay import run_staggered

    model = HookedModel(tiny_hf_model(arch, "sdpa"), tokenizer)
    batch = model.tokenize(PROMPTS, padding_side="left")
    with record_block_inputs(model) as inputs:
        _, cache = model.run_with_cache(batch, names=replay_names(model))
    start, answer = 5, batch.last_positions()
    layers = [0, 0, 1]
    shift = torch.linspace(-1.0, 1.0, model.cfg.d_model)  # not a constant: LayerNorm removes those
    resids = [cache["resid_pre", at][:, start:] + 0.5 * (c + 1) * shift for c, at in enumerate(layers)]
    name = "blocks.0.hook_mlp_out"  # only copies 0 and 1 have joined there
    late = "blocks.1.hook_mlp_out"  # all three: copy 2 (rows 4:6) joined at block 1

    def bump(rows):
        def hook(tensor, point):
            tensor = tensor.clone()
            tensor[rows] += torch.linspace(-2.0, 2.0, tensor.shape[-1])  # not a constant: LayerNorm removes those
            return tensor
        return hook

    with torch.no_grad():
        together = run_staggered(model, inputs, cache, layers=layers, resids=resids, start=start, readout=answer,
                                 fwd=[(name, bump(slice(2, 4))), (late, bump(slice(4, 6)))])  # copies 1 and 2
        apart = [run_from(model, inputs, cache, layer=at, start=start, resid=resid, readout=answer,
                          fwd={1: [(name, bump(slice(0, 2)))], 2: [(late, bump(slice(0, 2)))]}.get(c, []))
                 for c, (at, resid) in enumerate(zip(layers, resids))]
    torch.testing.assert_close(together, torch.cat(apart), atol=1e-5, rtol=0)
    assert not torch.allclose(apart[1], run_from(model, inputs, cache, layer=0, start=start, resid=resids[1],
                                                 readout=answer), atol=1e-3)
    with pytest.raises(InputError, match="non-decreasing"):
        run_staggered(model, inputs, cache, layers=[1, 0], resids=resids[:2], start=start)
