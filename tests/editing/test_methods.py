"""ROME, MEMIT and FT-L make the new target the prediction, on every family, and change
nothing outside ``edited``."""

from __future__ import annotations

import pytest
import torch
from helpers import CONFIGS, request

from mechscope.editing import EDIT_METHODS, edit_model, edited
from mechscope.errors import InputError


def _weights(model):
    return {name: param.detach().clone() for name, param in model.hf_model.named_parameters()}


@pytest.mark.parametrize("method", list(EDIT_METHODS))
def test_edit_makes_the_target_the_prediction(tiny, method, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    req = request(tiny)
    target = tiny.tokenizer.convert_tokens_to_ids("rome")
    before = _weights(tiny)
    with torch.no_grad():
        assert int(tiny(req.requested_rewrite.text)[0, -1].argmax()) != target
    edit = edit_model(tiny, [req], method=method, config=CONFIGS[method])
    assert all(torch.equal(before[n], p) for n, p in tiny.hf_model.named_parameters())  # computing changes nothing
    with edited(tiny, edit), torch.no_grad():
        assert int(tiny(req.requested_rewrite.text)[0, -1].argmax()) == target
    assert all(torch.equal(before[n], p) for n, p in tiny.hf_model.named_parameters())
    assert edit.layers == (0,) and edit.method == method


def test_rome_writes_the_value_exactly(llama, tmp_path, monkeypatch):
    """The rank-one update maps the bare prompt's key onto the optimised value."""
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    from mechscope.editing.context import subject_keys

    req = request(llama)
    edit = edit_model(llama, [req], method="rome", config=CONFIGS["rome"])
    (update,) = edit.updates
    key = subject_keys(llama, 0, [(req.requested_rewrite.text, 0, "eiffel tower")])[0]
    w_out = llama.adapter.W_out(0)
    with edited(llama, edit):
        new = key @ llama.adapter.W_out(0)
    torch.testing.assert_close(new - key @ w_out, (key @ update.left) @ update.right)
    assert update.left.shape == (llama.cfg.d_mlp, 1)
    torch.testing.assert_close(update.left.norm(), torch.tensor(1.0))


def test_sequential_requests_are_computed_on_the_edited_model(llama, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    from mechscope.facts import make_request

    first, second = request(llama), make_request("located in city of {}", "cat", "berlin", model=llama)
    both = edit_model(llama, [first, second], method="rome", config=CONFIGS["rome"])
    alone = edit_model(llama, [first], method="rome", config=CONFIGS["rome"])
    with edited(llama, alone):
        after = edit_model(llama, [second], method="rome", config=CONFIGS["rome"])
    assert len(both.updates) == 2
    torch.testing.assert_close(both.updates[0].delta, alone.updates[0].delta)
    torch.testing.assert_close(both.updates[1].delta, after.updates[0].delta)
    assert not torch.allclose(after.updates[0].delta, edit_model(llama, [second], method="rome",
                                                                 config=CONFIGS["rome"]).updates[0].delta)


def test_bad_layer_and_method(llama):
    with pytest.raises(InputError, match=r"layer must be in 0\.\.1"):
        edit_model(llama, [request(llama)], method="rome", layer=5)
    with pytest.raises(InputError, match="unknown editing method 'romee'.*did you mean 'rome'"):
        edit_model(llama, [request(llama)], method="romee")
    with pytest.raises(InputError, match="no edit requests"):
        edit_model(llama, [], method="ft-l", layer=0)


def test_memit_reports_the_share_it_writes(llama, tmp_path, monkeypatch):
    """``written_share`` is what the update adds for the request's own key, as a share of the
    spread residual; a larger λ writes less of it."""
    import dataclasses

    monkeypatch.setenv("MECHSCOPE_CACHE_DIR", str(tmp_path))
    from mechscope.editing.context import context_templates
    from mechscope.editing.memit import _mean_keys

    req = request(llama)
    key = _mean_keys(llama, 0, [req], context_templates(llama))[0]  # the key MEMIT writes for
    shares = []
    for weight in (0.1, 100.0):
        edit = edit_model(llama, [req], method="memit", config=dataclasses.replace(CONFIGS["memit"],
                                                                                  update_weight=weight))
        (update,) = edit.updates
        (share,) = edit.info["written_share"][0]
        written = (key @ update.left) @ update.right
        torch.testing.assert_close(written, share * update.right[0], rtol=1e-3, atol=1e-5)
        assert 0 < share < 1
        shares.append(share)
    assert shares[0] > shares[1]


@pytest.mark.parametrize("arch_name", ["gemma3-gqa", "llama-gqa"])
def test_memit_writes_through_gemmas_post_mlp_norm(arch_name, tokenizer):
    """Gemma normalises the MLP's output before the residual gets it: the output projection's
    change MEMIT writes must make the norm give the wanted residual change (any the norm can
    give), not add the change before the norm. Elsewhere the change is the residual change."""
    import importlib

    from tiny import tiny_hf_model

    from mechscope import HookedModel
    from mechscope.editing.context import at_subject

    memit = importlib.import_module("mechscope.editing.memit")
    model = HookedModel(tiny_hf_model(arch_name), tokenizer, name=arch_name)
    bare = [("located in city of eiffel tower", 0, "eiffel tower"), ("the cat sat on the mat", 0, "cat")]
    adapter = model.adapter
    with torch.no_grad():
        projected = at_subject(model, "blocks.1.mlp.hook_post", bare)
        before = adapter.in_block(1, adapter.mlp_out_proj_path)(projected)
        reachable = before + torch.randn(before.shape, generator=torch.Generator().manual_seed(0)) * before.norm() / 4
        if "ln2_post" in adapter.norm_paths:
            norm = adapter.norm(1, "ln2_post")
            spread = norm(reachable) - norm(before)
            change = memit._output_change(model, 1, projected, spread)
            torch.testing.assert_close(norm(before + change), norm(reachable), rtol=1e-3, atol=1e-4)
            assert not torch.allclose(norm(before + spread), norm(reachable), rtol=1e-2, atol=1e-3)
        else:
            spread = reachable - before
            assert torch.equal(memit._output_change(model, 1, projected, spread), spread)
