"""Training: the sparse TopK path against its dense reference, each architecture and trick."""

from __future__ import annotations

import pytest
import torch

from mechscope.activations.source import TensorSource
from mechscope.errors import InputError
from mechscope.sae import SAEConfig, SparseAutoencoder
from mechscope.sae.geometric_median import geometric_median
from mechscope.sae.model import batch_topk_indices
from mechscope.sae.train import TrainConfig, learning_rate, train_sae, training_losses

D_IN, D_SAE = 16, 64


def _data(n=2048, d=D_IN, seed=0):
    """Activations with a few strong directions (sparse codes over a random dictionary) and an offset."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.rand(n, 48, generator=gen) * (torch.rand(n, 48, generator=gen) < 0.08)
    return codes @ torch.randn(48, d, generator=gen) + 2.0


def _sae(architecture, *, d_out=None, skip=False, seed=0):
    torch.manual_seed(seed)
    k = 4 if architecture in ("topk", "batchtopk") else None
    sae = SparseAutoencoder(SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture=architecture, k=k, d_out=d_out, skip=skip))
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.05 * torch.randn_like(p))
        sae.input_scale.fill_(0.7)
        sae.output_scale.fill_(0.7 if d_out is None else 1.3)
    return sae


def _grads(sae, x, y, dead, sparse, config):
    sae.zero_grad(set_to_none=True)
    losses = training_losses(sae, x, y, dead=dead, config=config, sparse=sparse)
    losses.total.backward()
    return losses, {name: p.grad.clone() for name, p in sae.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("architecture", ["topk", "batchtopk"])
@pytest.mark.parametrize("transcoder", [False, True])
def test_sparse_path_matches_dense_reference(architecture, transcoder):
    sae = _sae(architecture, d_out=12 if transcoder else None, skip=transcoder)
    x = torch.randn(64, D_IN)
    y = torch.randn(64, 12) if transcoder else x
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True  # AuxK takes part
    config = TrainConfig(total_steps=1, aux_k=6)
    fast, fast_grads = _grads(sae, x, y, dead, True, config)
    ref, ref_grads = _grads(sae, x, y, dead, False, config)
    torch.testing.assert_close(fast.total, ref.total, atol=1e-5, rtol=1e-5)
    assert torch.equal(fast.fired, ref.fired) and float(fast.l0) == float(ref.l0)
    assert fast_grads.keys() == ref_grads.keys() and "W_enc" in fast_grads
    for name in ref_grads:
        torch.testing.assert_close(fast_grads[name], ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_training_output_is_the_models_forward():
    sae = _sae("jumprelu")
    x = torch.randn(32, D_IN)
    losses = training_losses(sae, x, x, dead=None, config=TrainConfig(total_steps=1, l0_coefficient=0.0))
    expected = (sae(x).output - x).mul(sae.output_scale).pow(2).sum(-1).mean()
    torch.testing.assert_close(losses.mse, expected.detach(), atol=1e-4, rtol=1e-5)


def test_batch_topk_indices_equal_a_full_topk_even_when_falling_back():
    acts = torch.relu(torch.randn(50, 40))
    acts[3] += 5.0  # one row holds most of the batch's largest values: candidates fall short
    full = set(acts.flatten().topk(4 * 50).indices.tolist())
    for candidates in (1, 4, 10):
        assert set(batch_topk_indices(acts, 4, candidates).tolist()) == full


@pytest.mark.parametrize("architecture", ["relu", "topk", "batchtopk", "jumprelu"])
def test_each_architecture_learns(architecture):
    data = _data()
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture=architecture, k=4 if "topk" in architecture else None)
    config = TrainConfig(total_steps=60, batch_size=128, lr=3e-3, l1_coefficient=0.5, l0_coefficient=0.05)
    result = train_sae(cfg, TensorSource(data), config, progress=False)
    h = result.history
    assert len(h.loss) == 60 and result.steps == 60 and not result.sae.training
    assert float(h.mse[-5:].mean()) < 0.5 * float(h.mse[:5].mean())
    if architecture == "topk":
        assert float(h.l0.max()) <= 4
    if architecture == "batchtopk":
        assert float(h.l0[-1]) == pytest.approx(4, abs=0.01)
        assert float(result.sae.threshold) > 0
        eval_l0 = (result.sae.encode(data) > 0).sum(-1).float().mean()
        assert 1 < float(eval_l0) < 12  # the running threshold keeps about k per token at inference
    torch.testing.assert_close(result.sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert result.to_dict()["sae"]["architecture"] == architecture


def test_transcoder_learns_a_linear_map_with_its_skip():
    x = _data(seed=1)
    target = x @ torch.randn(D_IN, 12, generator=torch.Generator().manual_seed(2)) * 0.3
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4, d_out=12, skip=True)
    result = train_sae(cfg, TensorSource(x, target), TrainConfig(total_steps=80, batch_size=128, lr=3e-3), progress=False)
    assert float(result.history.mse[-5:].mean()) < 0.1 * float(result.history.mse[:5].mean())
    with pytest.raises(InputError, match="trains on \\(input, target\\) pairs"):
        train_sae(cfg, TensorSource(x), TrainConfig(total_steps=1, batch_size=128), progress=False)


def test_normalisation_scales_and_decoder_bias_init():
    data = _data() * 10
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4)
    config = TrainConfig(total_steps=1, batch_size=256, init_batches=8, lr=1e-12, lr_decay_fraction=0.0)
    result = train_sae(cfg, TensorSource(data), config, progress=False)
    first = torch.cat(list(TensorSource(data).batches(256, seed=0))[:8])
    scale = float(result.sae.input_scale)
    assert first.mul(scale).pow(2).sum(-1).mean().item() == pytest.approx(D_IN, rel=1e-4)
    assert float(result.sae.output_scale) == scale
    torch.testing.assert_close(result.sae.b_dec.detach(), geometric_median(first * scale), atol=1e-3, rtol=1e-3)
    mean = train_sae(cfg, TensorSource(data), TrainConfig(**{**config.__dict__, "b_dec_init": "mean"}), progress=False)
    torch.testing.assert_close(mean.sae.b_dec.detach(), first.mean(0) * scale, atol=1e-3, rtol=1e-3)


def test_geometric_median_resists_outliers():
    points = torch.cat([torch.zeros(9, 3), torch.full((1, 3), 1000.0)])
    assert geometric_median(points).abs().max() < 1e-3
    line = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    assert float(geometric_median(line)) == pytest.approx(2.0, abs=1e-3)


def test_dead_latents_are_counted_and_revived_by_aux_k():
    data = _data()
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4)
    sae = SparseAutoencoder(cfg)
    with torch.no_grad():
        sae.b_enc[:32] = -100.0  # half the latents never win the top-k
    base = {"total_steps": 30, "batch_size": 128, "lr": 3e-3, "dead_tokens_threshold": 256}
    without = train_sae(sae, TensorSource(data), TrainConfig(**base, aux_k_coefficient=0.0), progress=False)
    assert float(without.history.dead_fraction[-1]) >= 0.5
    with_aux = train_sae(sae, TensorSource(data), TrainConfig(**base, aux_k=8), progress=False)
    moved = (with_aux.sae.b_enc[:32] - sae.b_enc[:32]).detach().abs().max()
    assert float(moved) > 1e-2  # AuxK sent gradient to the dead latents' encoder
    assert float((without.sae.b_enc[:32] - sae.b_enc[:32]).detach().abs().max()) < 1e-4  # only renormalisation
    assert float(sae.b_enc[0].detach()) == -100.0  # the caller's SAE is not modified


def test_unit_norm_decoder_removes_the_parallel_gradient():
    sae = _sae("relu")
    sae.normalize_decoder()
    before = sae.W_dec.detach().clone()
    result = train_sae(sae, TensorSource(_data()), TrainConfig(total_steps=1, batch_size=128, lr=1e-3, lr_decay_fraction=0.0,
                                                               b_dec_init=None, normalize_activations=False), progress=False)
    torch.testing.assert_close(result.sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert not torch.equal(result.sae.W_dec, before)


def test_learning_rate_schedule_warms_up_and_decays():
    config = TrainConfig(total_steps=100, lr=1.0, lr_warmup_steps=10, lr_decay_fraction=0.2)
    lrs = [learning_rate(config, step) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0 and lrs[50] == 1.0 and lrs[79] == 1.0
    assert lrs[80] == pytest.approx(1.0) and lrs[90] == pytest.approx(0.5) and lrs[99] == pytest.approx(0.05)
    assert TrainConfig(total_tokens=1000, batch_size=300).steps == 4


def test_sparsity_warmup_ramps_the_l1_coefficient():
    data = _data()
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="relu")
    kw = {"total_steps": 3, "batch_size": 128, "l1_coefficient": 5.0, "lr": 1e-12, "lr_decay_fraction": 0.0}
    ramp = train_sae(cfg, TensorSource(data), TrainConfig(**kw, sparsity_warmup_steps=1000), progress=False)
    full = train_sae(cfg, TensorSource(data), TrainConfig(**kw), progress=False)
    assert float((ramp.history.loss - ramp.history.mse)[0]) < 0.01 * float((full.history.loss - full.history.mse)[0])


def test_config_errors_name_the_field():
    with pytest.raises(InputError, match="exactly one of total_steps and total_tokens"):
        TrainConfig()
    with pytest.raises(InputError, match="TrainConfig.batch_size must be an integer of at least 1"):
        TrainConfig(total_steps=1, batch_size=0)
    with pytest.raises(InputError, match="TrainConfig.lr must be a positive number"):
        TrainConfig(total_steps=1, lr=-1.0)
    with pytest.raises(InputError, match="b_dec_init must be one of geometric_median, mean, zeros"):
        TrainConfig(total_steps=1, b_dec_init="median")
    with pytest.raises(InputError, match="lr_decay_fraction must be in"):
        TrainConfig(total_steps=1, lr_decay_fraction=1.5)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4)
    with pytest.raises(InputError, match="yields no batch of 4096 tokens"):
        train_sae(cfg, TensorSource(torch.randn(100, D_IN)), TrainConfig(total_steps=1), progress=False)
    with pytest.raises(InputError, match="batches must be"):
        train_sae(cfg, TensorSource(torch.randn(100, 5)), TrainConfig(total_steps=1, batch_size=10), progress=False)
