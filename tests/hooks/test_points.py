"""Hook names: building, listing, globs, and errors that point at the fix."""

from __future__ import annotations

import pytest
import torch

from mechscope import hook_name
from mechscope.errors import HookPointError


def test_hook_name_short_forms():
    assert hook_name("resid_pre", 3) == "blocks.3.hook_resid_pre"
    assert hook_name("pattern", 0) == "blocks.0.attn.hook_pattern"
    assert hook_name("scale", 2, "ln1") == "blocks.2.ln1.hook_scale"
    assert hook_name("scale") == "ln_final.hook_scale"
    with pytest.raises(HookPointError, match="name one"):
        hook_name("scale", 3)
    with pytest.raises(HookPointError, match="not per layer"):
        hook_name("embed", 3)
    assert hook_name("embed") == "hook_embed"
    with pytest.raises(HookPointError, match="per layer"):
        hook_name("z")
    with pytest.raises(HookPointError, match="unknown hook kind"):
        hook_name("zz", 1)


def test_hook_names_are_in_forward_order(tiny):
    names = tiny.hook_names()
    assert names[0] == "hook_embed" and names[-1] == "hook_logits"
    assert names.index("blocks.0.hook_resid_pre") < names.index("blocks.0.attn.hook_z") < names.index("blocks.1.hook_resid_pre")
    assert tiny.hook_point("blocks.1.attn.hook_pattern").dims == ("batch", "head", "query_pos", "key_pos")


def test_globs_select_and_skip_on_request_points(tiny):
    z = tiny.hook_names("blocks.*.attn.hook_z")
    assert z == [f"blocks.{i}.attn.hook_z" for i in range(tiny.cfg.n_layers)]
    assert not any(name.endswith("hook_result") for name in tiny.hook_names("blocks.0.attn.*"))
    assert tiny.hook_names("blocks.0.attn.*result") == ["blocks.0.attn.hook_result"]
    assert tiny.hook_names("blocks.0.attn.hook_res*") == ["blocks.0.attn.hook_result"]  # nothing else matches
    with pytest.raises(HookPointError, match="expected one exact hook name"):
        tiny.hook_point("blocks.*.attn.hook_z")


def test_unknown_name_lists_closest(tiny):
    with pytest.raises(HookPointError, match=r"closest valid names: blocks\.0\.hook_resid_pre"):
        tiny.hook_names(["blocks.0.hook_resid_pr"])
    with pytest.raises(HookPointError, match="no hook point matches"):
        tiny.hook_names("blocks.*.hook_nothing")


def test_absent_points_say_why(tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    neox = HookedModel(tiny_hf_model("neox-parallel"), tokenizer)
    with pytest.raises(HookPointError, match="parallel"):
        neox.run_with_cache("the cat", names="blocks.0.hook_resid_mid")
    llama = HookedModel(tiny_hf_model("llama-gqa"), tokenizer)
    with pytest.raises(HookPointError, match="no learned position embedding"):
        llama.hook_point("hook_pos_embed")


def test_bad_hooks_are_rejected_clearly(tiny):
    with pytest.raises(HookPointError, match=r"\(name_or_glob, fn\) pairs"):
        with tiny.hooks(fwd=["blocks.0.hook_resid_pre"]):
            pass
    with pytest.raises(HookPointError, match="returned .* same shape"):
        tiny.run_with_hooks("the cat", fwd=[("blocks.0.hook_resid_pre", lambda t, hook: t[:, :1])])
    for module in tiny.hf_model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_nested_contexts_run_outer_hooks_first(tiny):
    order = []
    with tiny.hooks(fwd=[("blocks.0.hook_resid_post", lambda t, hook: order.append("outer"))]):
        with tiny.hooks(fwd=[("blocks.0.hook_resid_post", lambda t, hook: order.append("inner"))]):
            with torch.no_grad():
                tiny("the cat")
        with torch.no_grad():
            tiny("the cat")
    assert order == ["outer", "inner", "outer"]


def test_run_with_cache_accepts_a_name_predicate(tiny):
    _, cache = tiny.run_with_cache("the cat", names=lambda name: name.endswith("hook_resid_post"))
    assert list(cache) == [f"blocks.{i}.hook_resid_post" for i in range(tiny.cfg.n_layers)]
