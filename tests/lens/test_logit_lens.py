"""The logit lens: the final row is the model's output, every row is norm-then-unembed."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import torch
import torch.nn.functional as F
from lens_helpers import PROMPT
from matplotlib.figure import Figure

from mechscope import TokenBatch
from mechscope.errors import InputError
from mechscope.lens import LogitLensResult, logit_lens
from mechscope.lens.readout import unembed
from mechscope.viz import token_labels


def reference_lens_logits(model, resid):
    """Slow reference: the final norm written out from the adapter's parts, with the
    residual's own scale, then W_U and b_U."""
    adapter = model.adapter
    norm = adapter.norm(None, "ln_final")
    x = resid.double()
    if adapter.normalization == "layernorm":
        x = x - x.mean(-1, keepdim=True)
    normed = x / (x.pow(2).mean(-1, keepdim=True) + adapter.norm_eps(norm)).sqrt()
    normed = normed * adapter.norm_weight(norm).double()
    if adapter.norm_bias(norm) is not None:
        normed = normed + adapter.norm_bias(norm).double()
    logits = normed @ model.W_U.double()
    return logits if model.b_U is None else logits + model.b_U.double()


def test_final_layer_is_the_models_own_distribution(tiny):
    logits, cache = tiny.run_with_cache(PROMPT)
    n_layers = tiny.cfg.n_layers
    # Norm-then-unembed of the final residual gives the model's logits (RMSNorm, LayerNorm, Gemma's 1 + w).
    torch.testing.assert_close(unembed(tiny, cache["resid_post", n_layers - 1]), logits, atol=1e-4, rtol=0)
    result = logit_lens(tiny, PROMPT, top_k=3)
    top = logits[0].softmax(-1).topk(3)
    torch.testing.assert_close(result.top_probs[-1], top.values, atol=1e-6, rtol=0)
    assert torch.equal(result.top_token_ids[-1], top.indices)
    assert torch.allclose(result.kl_to_final[-1], torch.zeros(()), atol=1e-6)
    assert result.layer_labels == (*(f"L{i}" for i in range(n_layers)), "final")
    assert result.tokens == tuple(tiny.to_str_tokens(PROMPT))


def test_each_layer_is_its_residual_normed_with_its_own_scale(tiny):
    # The slow reference is itself right: on any input it reproduces the final norm module.
    x = torch.randn(5, tiny.cfg.d_model) * 3
    with torch.no_grad():
        expected = F.linear(tiny.adapter.norm(None, "ln_final")(x), tiny.W_U.T, tiny.b_U)
    torch.testing.assert_close(reference_lens_logits(tiny, x).float(), expected, atol=1e-4, rtol=0)
    _, cache = tiny.run_with_cache(PROMPT)
    result = logit_lens(tiny, PROMPT, top_k=4)
    for layer in range(tiny.cfg.n_layers):
        probs = reference_lens_logits(tiny, cache["resid_pre", layer][0]).softmax(-1)
        torch.testing.assert_close(result.top_probs[layer].double(), probs.topk(4).values, atol=1e-5, rtol=0)


def test_answer_prob_and_rank_agree_with_the_distribution(tiny):
    _, cache = tiny.run_with_cache(PROMPT)
    result = logit_lens(tiny, PROMPT, answer="paris", top_k=5)
    answer = tiny.tokenizer.convert_tokens_to_ids("paris")
    assert result.answer_id == answer and result.answer == "paris"
    for layer in range(tiny.cfg.n_layers):
        probs = reference_lens_logits(tiny, cache["resid_pre", layer][0]).softmax(-1)
        torch.testing.assert_close(result.answer_probs[layer].double(), probs[:, answer], atol=1e-5, rtol=0)
        expected_rank = (probs > probs[:, answer : answer + 1]).sum(-1) + 1
        assert torch.equal(result.answer_ranks[layer], expected_rank)
    # Where the answer is among the top k, its prob sits at index rank - 1.
    ranks, top_ids = result.answer_ranks, result.top_token_ids
    inside = ranks <= 5
    picked = top_ids.gather(-1, (ranks.clamp(max=5) - 1).unsqueeze(-1)).squeeze(-1)
    assert torch.equal(picked[inside], torch.full_like(picked[inside], answer))
    assert ((ranks == 1) == (top_ids[..., 0] == answer)).all()
    assert torch.equal(logit_lens(tiny, PROMPT, answer=answer).answer_ranks, ranks)  # an id works too


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"answer": "paris rome"}, "single token; 'paris rome' tokenizes to 2 tokens"),
        ({"answer": ""}, "answer is empty"),
        ({"answer": 10_000}, "answer id must lie in [0, 128)"),
        ({"top_k": 0}, "top_k must be an int in 1..128"),
    ],
)
def test_bad_arguments_say_what_to_do(tokenizer, kwargs, message):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")
    with pytest.raises(InputError) as error:
        logit_lens(model, PROMPT, **kwargs)
    assert message in str(error.value)


def test_several_prompts_are_refused(tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("gpt2"), tokenizer, name="gpt2")
    with pytest.raises(InputError, match="reads one prompt.*received 2 prompts"):
        logit_lens(model, [PROMPT, "the cat sat"])
    # A one-row padded batch is fine: its padding is dropped.
    padded = model.tokenize(["the cat sat"], padding_side="right")
    ids = torch.cat([padded.ids, torch.zeros(1, 2, dtype=torch.long)], 1)
    mask = torch.cat([padded.attention_mask, torch.zeros(1, 2, dtype=torch.long)], 1)
    result = logit_lens(model, TokenBatch(ids, mask), top_k=1)
    assert result.tokens == ("the", "cat", "sat")


@pytest.fixture
def gpt2_result(tokenizer) -> LogitLensResult:
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    return logit_lens(HookedModel(tiny_hf_model("gpt2"), tokenizer, name="gpt2"), PROMPT, answer="drink")


def test_to_dict_and_save(gpt2_result, tmp_path):
    data = gpt2_result.to_dict()
    assert data["type"] == "LogitLensResult" and data["answer"] == "drink"
    n_rows, n_pos = len(gpt2_result.layer_labels), len(gpt2_result.tokens)
    assert len(data["top_tokens"]) == n_rows and len(data["top_tokens"][0]) == n_pos
    assert len(data["answer_probs"]) == n_rows and len(data["answer_ranks"][0]) == n_pos
    saved = json.loads(gpt2_result.save(tmp_path / "lens.json").read_text())
    assert saved == json.loads(json.dumps(data))


def test_plot_labels_columns_with_tokens_drawn_as_text(gpt2_result):
    # "$x^$" would be invalid mathtext: drawing it must not try to parse it.
    odd = ("$x^$", "a$b", "\n", *gpt2_result.tokens[3:])
    top = tuple(tuple(("$y^$", *t[1:]) for t in per_pos) for per_pos in gpt2_result.top_tokens)
    fig = dataclasses.replace(gpt2_result, tokens=odd, top_tokens=top).plot()
    assert isinstance(fig, Figure)
    fig.savefig(io.BytesIO(), format="png")  # renders every text
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == token_labels(odd)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(gpt2_result.layer_labels)
    assert "$y^$" in [t.get_text() for t in ax.texts]
    assert "p('drink')" in ax.get_title()


def test_plot_without_answer_shows_top_probability(gpt2_result):
    fig = dataclasses.replace(gpt2_result, answer=None, answer_id=None, answer_probs=None, answer_ranks=None).plot()
    assert "top-1 probability" in fig.axes[0].get_title()


def test_logit_lens_needs_no_gradients_and_leaves_the_model_alone(tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("gemma3-gqa"), tokenizer, name="gemma3-gqa")
    before = {name: p.detach().clone() for name, p in model.hf_model.named_parameters()}
    logit_lens(model, PROMPT, answer="paris")
    for name, param in model.hf_model.named_parameters():
        assert param.grad is None and torch.equal(param, before[name])


def test_open_hooks_on_the_final_norm_do_not_fire_on_the_lens(tokenizer):
    """The lens reads the model's weights: a caller's ln_final hook changes the run's
    residuals but is not applied a second time to the residual the lens decodes."""
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")
    calls = []
    with model.hooks(fwd=[("ln_final.hook_scale", lambda scale, hook: calls.append(hook.name))]):
        logits, cache = model.run_with_cache(PROMPT, names="blocks.1.hook_resid_post")
        assert len(calls) == 1  # the run's own final norm
        lens_logits = unembed(model, cache["resid_post", 1])
    assert len(calls) == 1
    torch.testing.assert_close(lens_logits, logits, atol=1e-4, rtol=0)


def test_chosen_positions_are_read_alone_and_the_figure_says_what_it_left_out(tokenizer):
    from tiny import tiny_hf_model

    from mechscope import HookedModel

    model = HookedModel(tiny_hf_model("llama-gqa"), tokenizer, name="llama-gqa")
    full = logit_lens(model, PROMPT, top_k=2, answer="drink")
    part = logit_lens(model, PROMPT, top_k=2, answer="drink", positions=[3, 5])
    n = len(full.tokens)
    assert full.positions == tuple(range(n)) and full.n_prompt_tokens == part.n_prompt_tokens == n
    assert part.positions == (3, 5) and part.tokens == (full.tokens[3], full.tokens[5])
    torch.testing.assert_close(part.top_probs, full.top_probs[:, [3, 5]], atol=1e-6, rtol=0)
    torch.testing.assert_close(part.answer_probs, full.answer_probs[:, [3, 5]], atol=1e-6, rtol=0)
    assert part.top_tokens[1] == tuple(full.top_tokens[1][p] for p in (3, 5))
    ax = full.plot(max_positions=4).axes[0]
    title = " ".join(ax.get_title().split())  # wrapped to the figure's width
    assert len(ax.get_xticklabels()) == 4 and f"4 of {n} positions, {n - 4}–{n - 1}" in title
    assert [t.get_text() for t in ax.get_xticklabels()][-1].endswith(f"|{n - 1}")
    assert f"2 of {n} positions, 3–5" in " ".join(part.plot().axes[0].get_title().split())
    assert "positions" not in full.plot().axes[0].get_title()
    for bad in ([], [5, 3], [n]):
        with pytest.raises(InputError, match="positions must be increasing positions"):
            logit_lens(model, PROMPT, positions=bad)
