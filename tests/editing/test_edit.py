"""Edits live only inside ``edited``; their factors save and load."""

from __future__ import annotations

import pytest
import torch

from mechscope.editing import Edit, LayerUpdate, edited, load_edit, save_edit
from mechscope.errors import InputError
from mechscope.facts import make_request


def _edit(model, layer: int = 0, rank: int = 2, seed: int = 0) -> Edit:
    generator = torch.Generator().manual_seed(seed)
    update = LayerUpdate(layer=layer, left=torch.randn(model.cfg.d_mlp, rank, generator=generator),
                         right=torch.randn(rank, model.cfg.d_model, generator=generator))
    request = make_request("the {} is in", "cat", "rome", "paris")
    return Edit(method="rome", updates=(update, update), requests=(request,), model=model.name, model_hash="x")


def test_weights_are_restored_bit_for_bit(tiny):
    before = {n: p.detach().clone() for n, p in tiny.hf_model.named_parameters()}
    plain = tiny("the cat sat on the mat")
    edit = _edit(tiny, layer=tiny.cfg.n_layers - 1)
    with edited(tiny, edit):
        changed = tiny("the cat sat on the mat")
        # The adapter's W_out view of the projection carries both updates.
        expected = before_w_out(tiny, before, edit) + 2 * edit.updates[0].delta
        torch.testing.assert_close(tiny.adapter.W_out(edit.updates[0].layer), expected)
    assert not torch.allclose(changed, plain)
    with pytest.raises(RuntimeError, match="inside"), edited(tiny, edit):
        raise RuntimeError("inside")
    for name, param in tiny.hf_model.named_parameters():
        assert torch.equal(param, before[name]), name
    torch.testing.assert_close(tiny("the cat sat on the mat"), plain, atol=0, rtol=0)


def before_w_out(model, before, edit):
    """The unedited W_out, read through the adapter from the saved state."""
    layer = edit.updates[0].layer
    weight = model.adapter.in_block(layer, model.adapter.mlp_out_proj_path).weight
    name = next(n for n, p in model.hf_model.named_parameters() if p is weight)
    with torch.no_grad():
        current = weight.detach().clone()
        weight.copy_(before[name])
        w_out = model.adapter.W_out(layer).detach().clone()
        weight.copy_(current)
    return w_out


def test_save_and_load(llama, tmp_path):
    edit = _edit(llama)
    path = save_edit(edit, tmp_path / "edit.safetensors")
    loaded = load_edit(path)
    assert (loaded.method, loaded.model, loaded.layers, loaded.requests) == ("rome", "llama-gqa", (0,), edit.requests)
    for a, b in zip(loaded.updates, edit.updates):
        assert torch.equal(a.left, b.left) and torch.equal(a.right, b.right)
    assert edit.to_dict()["ranks"] == [2, 2]
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(InputError, match="not a mechscope edit file"):
        load_edit(tmp_path / "junk.safetensors")
    with pytest.raises(InputError, match="no such edit file"):
        load_edit(tmp_path / "missing.safetensors")


def test_edits_that_do_not_fit_are_refused(llama):
    with pytest.raises(InputError, match=r"layer must be in 0\.\.1"):
        with edited(llama, _edit(llama, layer=7)):
            pass
    wrong = Edit(method="rome", updates=(LayerUpdate(layer=0, left=torch.zeros(5, 1), right=torch.zeros(1, 64)),),
                 requests=(), model="other", model_hash="x")
    with pytest.raises(InputError, match="d_mlp=5"):
        with edited(llama, wrong):
            pass
    with pytest.raises(InputError, match="left .d_mlp, rank. and right"):
        LayerUpdate(layer=0, left=torch.zeros(5, 2), right=torch.zeros(1, 64))
