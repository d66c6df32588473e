"""HookedModel computes exactly what the Hugging Face model computes."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_hf_model

from mechscope import HookedModel

PROMPT = "when mary and john went to the store , john gave a drink to"


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_logits_match_hf_without_hooks(arch, tokenizer, impl):
    hf = tiny_hf_model(arch, impl)
    model = HookedModel(hf, tokenizer)
    ids = model.to_tokens(PROMPT)
    with torch.no_grad():
        expected = hf(ids).logits
        torch.testing.assert_close(model(ids), expected, atol=1e-5, rtol=0)


def test_caching_every_point_keeps_logits_under_eager(arch, tokenizer):
    """Reading every hook point (which routes attention through mechscope's eager
    attention function) gives the logits of HF's own eager attention."""
    hf = tiny_hf_model(arch, "eager")
    model = HookedModel(hf, tokenizer)
    ids = model.to_tokens(PROMPT)
    with torch.no_grad():
        expected = hf(ids).logits
    logits, cache = model.run_with_cache(ids, names="*")
    # "*" selects every point but attn.hook_result, which is computed only when named
    assert set(cache) == {name for name in model.hook_names() if not name.endswith("hook_result")}
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(cache["hook_logits"], expected, atol=1e-5, rtol=0)


def test_identity_hooks_on_every_point_keep_logits(tiny):
    """Hooks that return their input unchanged (a replacement each time) change nothing,
    including attn.hook_result, whose replacement path re-sums the heads."""
    ids = tiny.to_tokens(PROMPT)
    with torch.no_grad():
        expected = tiny(ids)
        got = tiny.run_with_hooks(ids, fwd=[("*", lambda t, hook: t.clone()), ("*result", lambda t, hook: t.clone())])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_sdpa_model_with_attention_hooks_matches_sdpa_logits(tiny):
    ids = tiny.to_tokens(PROMPT)
    with torch.no_grad():
        expected = tiny.hf_model(ids).logits
    logits, _ = tiny.run_with_cache(ids, names="blocks.0.attn.hook_pattern")
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_hooks_are_gone_after_an_exception(tiny):
    ids = tiny.to_tokens(PROMPT)
    impl = tiny.hf_model.config._attn_implementation

    def boom(tensor, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with tiny.hooks(fwd=[("*", lambda t, hook: None)]):
            tiny.run_with_hooks(ids, fwd=[("blocks.1.attn.hook_pattern", boom)])
    for module in tiny.hf_model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    from mechscope.hooks import attention

    assert not attention.SITES
    assert tiny.hf_model.config._attn_implementation == impl
    assert tiny._installation is None


def test_sliding_window_is_respected(tokenizer):
    """Gemma 3's sliding layers (window 4 here) give zero attention beyond the window."""
    model = HookedModel(tiny_hf_model("gemma3-gqa"), tokenizer)
    ids = torch.arange(3, 15).unsqueeze(0)
    _, cache = model.run_with_cache(ids, names="*hook_pattern")
    sliding, full = cache["pattern", 0][0], cache["pattern", 1][0]
    query, key = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    outside = (query - key >= 4) | (key > query)
    assert sliding[:, outside].abs().max() == 0
    assert full[:, (query - key >= 4) & (key <= query)].min() > 0
