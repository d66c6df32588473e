"""The induction toy: its data, its attention-only model, its training and its check.

The default tests run in seconds on tiny step counts; the slow one trains the real
configuration and checks that the circuit forms and passes every criterion.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from mechscope.errors import InputError
from mechscope.heads import head_roles
from mechscope.toys import (
    BOS_ID,
    InductionConfig,
    ablated_induction_loss,
    attention_only_model,
    induction_batch,
    integer_tokenizer,
    k_composition_scores,
    next_token_losses,
    train_induction_model,
    verify_induction,
)
from mechscope.toys.induction_check import composition, folded_reading_weights, random_k_composition

SMALL = InductionConfig(steps=40, batch_size=16)


@pytest.fixture(scope="module")
def short_run():
    return train_induction_model(SMALL, progress=False)


# ------------------------------------------------------------------------- data
def test_batch_copies_a_span_at_random_offsets():
    batch = induction_batch(300, 48, 64, span=12, seed=0)
    a, b = batch.source_start, batch.copy_start
    for row in range(300):
        assert torch.equal(batch.ids[row, b[row] : b[row] + 12], batch.ids[row, a[row] : a[row] + 12])
    offsets = b - a
    assert offsets.min() >= 2 and (b + 12).max() <= 48 and a.min() >= 1
    assert offsets.unique().numel() > 25  # 2 .. 35 possible: position alone cannot find the original
    assert (offsets < 12).any() and (offsets >= 12).any()  # overlapping (periodic) copies and separate ones
    assert (batch.ids[:, 0] == BOS_ID).all()
    rest = batch.ids[:, 1:]
    assert rest.min() == 1 and rest.max() == 63


def test_mask_marks_the_copy_after_its_first_token():
    batch = induction_batch(50, 48, 64, span=12, seed=1)
    expected = torch.zeros(50, 48, dtype=torch.bool)
    for row, start in enumerate(batch.copy_start.tolist()):
        expected[row, start + 1 : start + 12] = True
    assert torch.equal(batch.induction_mask, expected)
    assert (batch.induction_mask.sum(1) == 11).all()


def test_batch_is_determined_by_its_seed():
    first, again = induction_batch(8, 48, 64, span=12, seed=3), induction_batch(8, 48, 64, span=12, seed=3)
    other = induction_batch(8, 48, 64, span=12, seed=4)
    assert torch.equal(first.ids, again.ids) and torch.equal(first.induction_mask, again.induction_mask)
    assert not torch.equal(first.ids, other.ids)


def test_bad_arguments_say_what_to_change():
    with pytest.raises(InputError, match="seq_len must be at least span \\+ 3"):
        induction_batch(4, 10, 64, span=8, seed=0)
    with pytest.raises(InputError, match="span must be at least 2"):
        induction_batch(4, 48, 64, span=1, seed=0)
    with pytest.raises(InputError, match="InductionConfig.span"):
        InductionConfig(seq_len=16, span=14)
    with pytest.raises(InputError, match="InductionConfig.loss_tokens"):
        InductionConfig(loss_tokens="some")
    with pytest.raises(InputError, match="InductionConfig.d_model must be a multiple"):
        InductionConfig(d_model=66)


# ------------------------------------------------------------------------ model
def test_tokenizer_reads_integers_and_adds_bos():
    model = attention_only_model(SMALL)
    assert model.to_tokens("5 17 3").tolist() == [[BOS_ID, 5, 17, 3]]
    assert model.to_string(torch.tensor([5, 17])) == "5 17"
    assert len(integer_tokenizer(64)) == 64


def test_model_is_attention_only(short_run):
    for model in (attention_only_model(SMALL), short_run.model):
        batch = induction_batch(4, 48, 64, span=12, seed=0)
        _, cache = model.run_with_cache(batch.ids, names=["blocks.*.hook_mlp_out", "blocks.*.attn.hook_z"])
        for layer in range(2):
            assert torch.equal(cache["mlp_out", layer], torch.zeros_like(cache["mlp_out", layer]))
            assert cache["z", layer].abs().max() > 0
        for name, param in model.hf_model.named_parameters():
            frozen = ".mlp." in name or ".ln_2." in name
            assert param.requires_grad is not frozen, name
            if ".mlp." in name:
                assert not param.any(), name


# --------------------------------------------------------------------- training
def test_a_few_steps_lower_the_loss(short_run):
    loss = short_run.induction_loss
    assert loss.shape == (SMALL.steps,) and short_run.loss.shape == (SMALL.steps,)
    assert loss[-10:].mean() < loss[:10].mean() - 0.1
    assert short_run.config == SMALL
    assert json.loads(json.dumps(short_run.to_dict()))["config"]["steps"] == SMALL.steps


def test_training_is_deterministic_for_a_seed(short_run):
    again = train_induction_model(SMALL, progress=False)
    assert torch.equal(again.loss, short_run.loss)
    for p, q in zip(again.model.hf_model.parameters(), short_run.model.hf_model.parameters()):
        assert torch.equal(p, q)
    other = train_induction_model(dataclasses.replace(SMALL, seed=1, steps=5), progress=False)
    assert not torch.equal(other.loss, short_run.loss[:5])


def test_training_restores_the_thread_count():
    before = torch.get_num_threads()
    train_induction_model(dataclasses.replace(SMALL, steps=1, threads=2), progress=False)
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------- the check
def test_folded_weights_give_the_models_queries_keys_and_values(short_run):
    """Layer norm folded into W_Q, W_K, W_V reproduces hook_q/k/v, up to the per-position scale."""
    model = short_run.model
    ids = induction_batch(2, 48, 64, span=12, seed=5).ids
    _, cache = model.run_with_cache(ids)
    adapter = model.adapter
    for layer in range(2):
        x = cache["resid_pre", layer] / cache[f"blocks.{layer}.ln1.hook_scale"]
        ln = adapter.norm(layer, "ln1")
        for which, bias in (("q", adapter.b_Q(layer)), ("k", adapter.b_K(layer)), ("v", adapter.b_V(layer))):
            folded = folded_reading_weights(model, layer, which.upper())  # head d_model d_head
            expected = torch.einsum("bpd,hde->bphe", x, folded) + bias + adapter.norm_bias(ln) @ getattr(
                model, f"W_{which.upper()}")[layer]
            torch.testing.assert_close(expected, cache[which, layer], atol=1e-4, rtol=1e-4)


def test_composition_of_aligned_and_orthogonal_maps():
    e1, e2 = torch.eye(4)[0:1], torch.eye(4)[1:2]
    assert composition(e1.T @ e1, e1.T @ e1) == pytest.approx(1.0)
    assert composition(e1.T @ e1, e2.T @ e2) == pytest.approx(0.0)
    mean, std = random_k_composition(64, 16, seed=0)
    assert abs(mean - 0.125) < 0.01 and 0 < std < 0.02  # about 1/sqrt(d_model) for rank-16 maps
    assert random_k_composition(64, 16, seed=0) == (mean, std)


def test_verify_runs_on_an_untrained_model_and_fails_it(short_run):
    check = verify_induction(short_run.model, n_seqs=16)
    assert check.previous_token.shape == check.induction.shape == check.ablated_loss.shape == (2, 4)
    assert check.k_composition.shape == (4, 4)
    torch.testing.assert_close(check.k_composition, k_composition_scores(short_run.model))
    assert ((check.previous_token >= 0) & (check.previous_token <= 1)).all()
    assert check.previous_token_head[0] == 0 and check.induction_head[0] == 1
    assert not check.verified and check.failures  # 40 steps form no induction heads
    assert check.clean_loss > 3.5  # near chance, ln(63) = 4.14
    assert check.to_dict()["verified"] is False


def test_ablating_nothing_is_the_clean_loss(short_run):
    model = short_run.model
    batch = induction_batch(8, 48, 64, span=12, seed=7)
    with torch.no_grad():
        clean = float(next_token_losses(model(batch.ids), batch)[1])
    assert ablated_induction_loss(model, batch, batch, ()) == pytest.approx(clean)
    assert ablated_induction_loss(model, batch, batch, ((0, 1), (1, 2))) != pytest.approx(clean)


# ------------------------------------------------------------------ real run
@pytest.mark.slow
def test_default_config_forms_a_verified_induction_circuit():
    trained = train_induction_model(InductionConfig(), progress=False)
    check = verify_induction(trained.model)
    assert check.verified, check.failures
    prev, ind = check.previous_token_head, check.induction_head
    assert check.previous_token[prev] > 0.8
    assert check.induction[ind] > 0.7
    assert check.clean_loss < 0.3 < math.log(63) - 3
    assert check.ablated_loss[prev] - check.clean_loss > 2.0
    assert check.induction_heads_ablated_loss - check.clean_loss > 3.0
    # mechscope.heads, on its own probe ([BOS] r r), finds the same heads.
    roles = head_roles(trained.model, seq_len=20)
    assert roles.top("previous_token", 1)[0][:2] == prev
    assert roles.top("induction", 1)[0][:2] in check.circuit.induction_heads
