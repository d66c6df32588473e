"""The compiled induction toy: hand-set weights whose circuit is known by construction.

Every number here is designed, so the golden values are exact up to float rounding:
the copied token's logit is 10 and every other logit 0.
"""

from __future__ import annotations

import pytest
import torch

from mechscope.circuits import CircuitGraph
from mechscope.errors import InputError
from mechscope.tasks.task import answer_logits, logit_diff
from mechscope.toys import BOS_ID, CORRUPTIONS, compiled_induction_model, compiled_induction_task


@pytest.fixture(scope="module")
def compiled():
    return compiled_induction_model()


@pytest.fixture(scope="module")
def tasks(compiled):
    return {corruption: compiled_induction_task(compiled.model, n=32, corruption=corruption)
            for corruption in CORRUPTIONS}


def _zeroing(heads):
    """Forward hooks that zero ``heads``' ``hook_z``."""
    def hook(chosen):
        def fn(z, hook):
            z = z.clone()
            z[:, :, chosen] = 0
            return z
        return fn
    layers = sorted({layer for layer, _ in heads})
    return [(f"blocks.{layer}.attn.hook_z", hook([h for l, h in heads if l == layer])) for layer in layers]


@torch.no_grad()
def _answer_logits(model, task, fwd=()):
    logits = model.run_with_hooks(task.clean, fwd=fwd)
    return logits[torch.arange(len(task)), task.answer_pos]


# ----------------------------------------------------------------- behaviour
@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_clean_prompts_predict_the_induction_answer_and_corrupted_ones_the_wrong_one(compiled, tasks, corruption):
    task = tasks[corruption]
    clean, corrupt = answer_logits(compiled.model, task.clean), answer_logits(compiled.model, task.corrupt)
    assert (clean.argmax(-1) == task.answers).float().mean() >= 0.95  # measured: 1.0
    assert (corrupt.argmax(-1) == task.wrong).float().mean() >= 0.95  # measured: 1.0
    assert abs(float(logit_diff(clean, task.answers, task.wrong).mean()) - 10.0) < 1e-3
    assert abs(float(logit_diff(corrupt, task.answers, task.wrong).mean()) + 10.0) < 1e-3


def test_zeroing_a_circuit_head_destroys_induction(compiled, tasks):
    model, task = compiled.model, tasks["value"]
    without_induction = logit_diff(_answer_logits(model, task, _zeroing([compiled.induction_head])),
                                   task.answers, task.wrong)
    assert float(without_induction.abs().max()) < 1e-3
    # without 0.0 the induction head's keys are empty, it attends uniformly: about 10 / n_ctx is left
    without_previous = logit_diff(_answer_logits(model, task, _zeroing([compiled.previous_token_head])),
                                  task.answers, task.wrong)
    assert abs(float(without_previous.mean()) - 10.0 / model.cfg.n_ctx) < 0.1


def test_zeroing_every_distractor_changes_the_logits_by_float_rounding_only(compiled, tasks):
    model, task = compiled.model, tasks["value"]
    clean = _answer_logits(model, task)
    ablated = _answer_logits(model, task, _zeroing(list(compiled.distractor_heads)))
    assert float((ablated - clean).abs().max()) < 1e-5  # measured: 9e-8
    clean_diff = logit_diff(clean, task.answers, task.wrong).mean()
    ablated_diff = logit_diff(ablated, task.answers, task.wrong).mean()
    assert abs(float(ablated_diff / clean_diff) - 1.0) < 1e-5


def test_distractors_are_active(compiled, tasks):
    _, cache = compiled.model.run_with_cache(tasks["value"].clean, names="blocks.*.attn.hook_z")
    for layer, head in compiled.distractor_heads:
        assert float(cache[f"blocks.{layer}.attn.hook_z"][:, :, head].abs().mean()) > 0.01


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_each_corruption_reaches_the_logits_through_its_own_heads(compiled, tasks, corruption):
    """Patching a head's output from the corrupted run flips the answer only where the
    corruption's difference flows: through 0.0 only for ``key``, through 1.2 always."""
    model, task = compiled.model, tasks[corruption]
    _, cache = model.run_with_cache(task.corrupt, names="blocks.*.attn.hook_z")

    def patched(heads):
        def patch(name, chosen):
            def fn(z, hook):
                z = z.clone()
                z[:, :, chosen] = cache[name][:, :, chosen]
                return z
            return name, fn
        layers = sorted({layer for layer, _ in heads})
        fwd = [patch(f"blocks.{layer}.attn.hook_z", [h for l, h in heads if l == layer]) for layer in layers]
        return float(logit_diff(_answer_logits(model, task, fwd), task.answers, task.wrong).mean())

    assert abs(patched([compiled.induction_head]) + 10.0) < 1e-3
    assert abs(patched([compiled.previous_token_head]) - (-10.0 if corruption == "key" else 10.0)) < 1e-3
    assert abs(patched(list(compiled.distractor_heads)) - 10.0) < 1e-3


# -------------------------------------------------------------------- heads
def test_previous_token_head_attends_to_the_previous_position(compiled, tasks):
    _, cache = compiled.model.run_with_cache(tasks["value"].clean, names=["blocks.0.attn.hook_pattern"])
    pattern = cache["blocks.0.attn.hook_pattern"][:, 0]  # batch query key
    positions = torch.arange(1, pattern.shape[-1])
    assert float(pattern[:, positions, positions - 1].min()) > 0.9  # measured: 1 - 1e-12
    assert float(pattern[:, 0, 0].min()) > 0.9  # BOS attends to itself


def test_induction_head_attends_to_the_token_after_the_earlier_occurrence(compiled, tasks):
    task = tasks["value"]
    _, cache = compiled.model.run_with_cache(task.clean, names=["blocks.1.attn.hook_pattern"])
    last = cache["blocks.1.attn.hook_pattern"][:, compiled.induction_head[1], -1]  # batch key
    ids = task.clean.ids
    target = torch.stack([(ids[row, :-1] == ids[row, -1]).nonzero()[0, 0] + 1 for row in range(len(task))])
    assert float(last[torch.arange(len(task)), target].min()) > 0.9


def test_every_norm_divides_by_the_same_constant(compiled, tasks):
    _, cache = compiled.model.run_with_cache(tasks["value"].clean, names=["*hook_scale", "blocks.*.hook_resid_post"])
    for name in cache.keys():
        if name.endswith("hook_scale"):
            assert bool((cache[name] == cache["ln_final.hook_scale"][0, 0]).all()), name
        else:
            assert float(cache[name].var(-1).max()) < 10.0  # eps is 1e12: no variance here moves it


def test_layer_norms_are_the_identity_on_mean_zero_vectors(compiled):
    x = torch.randn(100, compiled.model.cfg.d_model, generator=torch.Generator().manual_seed(0)) * 20
    x = x - x.mean(-1, keepdim=True)
    transformer = compiled.model.hf_model.transformer
    with torch.no_grad():
        for norm in (transformer.h[0].ln_1, transformer.h[1].ln_1, transformer.ln_f):
            torch.testing.assert_close(norm(x), x, rtol=1e-5, atol=1e-4)


# -------------------------------------------------------------------- edges
def test_known_edges_are_the_designed_circuit_in_the_graph(compiled):
    graph = CircuitGraph.of(compiled.model)
    assert compiled.known_edges <= set(graph.edges)
    assert {str(edge) for edge in compiled.known_edges} == {
        "a0.0<q> ← input", "a0.kv0<k> ← input", "a0.kv0<v> ← input", "a1.kv2<k> ← a0.0",
        "a1.2<q> ← input", "a1.kv2<v> ← input", "logits ← a1.2",
    }
    assert compiled.previous_token_head == (0, 0) and compiled.induction_head == (1, 2)
    assert len(compiled.distractor_heads) == 6
    for corruption in CORRUPTIONS:
        assert compiled.exercised_edges(corruption) <= compiled.known_edges
    assert {str(e) for e in compiled.exercised_edges("key")} == {"a0.kv0<v> ← input", "a1.kv2<k> ← a0.0",
                                                                 "logits ← a1.2"}


# --------------------------------------------------------------------- task
def test_task_prompts_differ_only_where_the_corruption_says(tasks):
    clean = tasks["value"].clean.ids
    assert (clean[:, 0] == BOS_ID).all() and (clean[:, 1:] != BOS_ID).all()
    changed = {corruption: (task.corrupt.ids != task.clean.ids).sum(-1) for corruption, task in tasks.items()}
    assert all(torch.equal(task.clean.ids, clean) for task in tasks.values())
    assert (changed["value"] == 1).all() and (changed["query"] == 1).all() and (changed["key"] == 2).all()
    assert (tasks["query"].corrupt.ids[:, -1] != clean[:, -1]).all()
    task = tasks["value"]
    assert task.prompts[0].startswith("[BOS] ") and len(task.prompts[0].split()) == clean.shape[1]
    assert (task.answers != task.wrong).all()


def test_same_seed_same_model_and_task(compiled):
    again = compiled_induction_model()
    weights, again_weights = compiled.model.hf_model.state_dict(), again.model.hf_model.state_dict()
    for name, weight in weights.items():
        assert torch.equal(weight, again_weights[name]), name
    other = compiled_induction_model(seed=1).model.hf_model.transformer.h[0].attn.c_attn.weight
    assert not torch.equal(other, compiled.model.hf_model.transformer.h[0].attn.c_attn.weight)
    first, second = (compiled_induction_task(compiled.model, n=4, seed=3) for _ in range(2))
    assert torch.equal(first.clean.ids, second.clean.ids)


def test_smallest_model_still_runs_induction():
    small = compiled_induction_model(d_vocab=7, n_ctx=8)
    task = compiled_induction_task(small.model, n=32, seed=1)
    clean = answer_logits(small.model, task.clean)
    assert (clean.argmax(-1) == task.answers).all()


def test_softer_attention_still_runs_induction_with_a_smaller_margin():
    soft = compiled_induction_model(sharpness=4.0)
    task = compiled_induction_task(soft.model, n=32)
    clean = answer_logits(soft.model, task.clean)
    assert (clean.argmax(-1) == task.answers).all()
    assert abs(float(logit_diff(clean, task.answers, task.wrong).mean()) - 4.2) < 0.5  # measured: 4.197


@pytest.mark.parametrize("kwargs, match", [
    ({"sharpness": 0.0}, "sharpness must be positive"),
    ({"d_vocab": 6}, "d_vocab must be at least 7"),
    ({"n_ctx": 7}, "n_ctx must be at least 8"),
])
def test_model_refuses_sizes_too_small(kwargs, match):
    with pytest.raises(InputError, match=match):
        compiled_induction_model(**kwargs)


def test_task_refuses_bad_arguments(compiled):
    with pytest.raises(InputError, match="corruption must be one of"):
        compiled_induction_task(compiled.model, corruption="answer")
    with pytest.raises(InputError, match="n must be at least 1"):
        compiled_induction_task(compiled.model, n=0)
    with pytest.raises(InputError, match="corruption must be one of"):
        compiled.exercised_edges("answer")
