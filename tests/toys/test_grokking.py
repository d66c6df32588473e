"""Grokking modular addition: data, the fast forward against Hugging Face's, resumable
training, the Fourier analysis on planted logits, and (slow) a quick run that groks."""

from __future__ import annotations

import math

import pytest
import torch

from mechscope.errors import InputError
from mechscope.toys.grokking import (
    GrokkingConfig,
    answer_logits,
    fast_answer_logits,
    grokking_model,
    modular_data,
    train_grokking,
)
from mechscope.toys.grokking_analysis import (
    analyse_grokking,
    cos_term_fit,
    embedding_fourier_shares,
    fourier_basis,
    grokking_phases,
    key_frequencies,
    restricted_and_excluded,
)


def test_data_covers_every_pair_with_a_seeded_split():
    data = modular_data(7, 0.3, seed=0)
    assert data.inputs.shape == (49, 3) and (data.inputs[:, 2] == 7).all()
    assert torch.equal(data.labels, (data.inputs[:, 0] + data.inputs[:, 1]) % 7)
    assert int(data.is_train.sum()) == round(0.3 * 49)
    assert torch.equal(data.is_train, modular_data(7, 0.3, seed=0).is_train)
    assert not torch.equal(data.is_train, modular_data(7, 0.3, seed=1).is_train)


def test_fast_forward_matches_hugging_face():
    config = GrokkingConfig(p=11, d_model=32, n_heads=4, d_mlp=64)
    model = grokking_model(config)
    with torch.no_grad():
        for param in model.hf_model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.2)
    data = modular_data(11, 0.5, seed=0)
    with torch.no_grad():
        reference, fast = answer_logits(model, data.inputs), fast_answer_logits(model, data.inputs)
    assert reference.shape == (121, 11)
    assert (reference - fast).abs().max() < 1e-4 * reference.abs().max()


def test_the_model_has_no_working_layernorm():
    model = grokking_model(GrokkingConfig(p=11, d_model=32, n_heads=4, d_mlp=64))
    ln = model.hf_model.transformer.h[0].ln_1
    x = torch.randn(5, 32) * 3
    assert torch.allclose(ln(x), x - x.mean(-1, keepdim=True), atol=1e-5)  # only the mean goes
    assert not ln.weight.requires_grad


def test_training_resumes_to_the_same_weights(tmp_path):
    config = GrokkingConfig(p=11, d_model=32, n_heads=4, d_mlp=64, steps=12, checkpoint_every=5, eval_every=4,
                            snapshot_every=6)
    whole = train_grokking(config, checkpoint_dir=tmp_path / "a", progress=False)
    train_grokking(GrokkingConfig(**{**config.__dict__, "lr": 2e-3}), checkpoint_dir=tmp_path / "b", progress=False)
    with pytest.raises(InputError, match="another configuration"):  # another lr's checkpoint is not this run's
        train_grokking(config, checkpoint_dir=tmp_path / "b", progress=False)
    cut = train_grokking(config, checkpoint_dir=tmp_path / "c", progress=False)
    (tmp_path / "c" / "step-000000012").rename(tmp_path / "c" / "dropped")  # as if killed after step 10
    resumed = train_grokking(config, checkpoint_dir=tmp_path / "c", progress=False)
    assert resumed.resumed_from == 10 and cut.resumed_from is None
    for name, value in whole.model.hf_model.state_dict().items():
        assert torch.equal(value, resumed.model.hf_model.state_dict()[name]), name
    assert resumed.history["train_loss"] == whole.history["train_loss"]
    assert [s for s, _ in [(e, m) for e, m in whole.snapshot_models()]] == [0, 6, 12]
    loaded = train_grokking(config, checkpoint_dir=tmp_path / "a", progress=False)
    assert loaded.resumed_from == 12  # finished: loaded, nothing trained


def _planted_logits(p: int, keys: dict[int, float], noise: float = 0.0) -> torch.Tensor:
    idx = torch.arange(p)
    phase = (idx.view(-1, 1, 1) + idx.view(1, -1, 1) - idx.view(1, 1, -1)).double()
    logits = sum(a * torch.cos(2 * math.pi * k * phase / p) for k, a in keys.items())
    return logits + noise * torch.randn(p, p, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_cos_fit_recovers_planted_terms_and_rejects_others():
    logits = _planted_logits(13, {2: 3.0, 5: 1.5}, noise=0.3)
    explained, alphas = cos_term_fit(logits, (2, 5))
    assert abs(alphas[2] - 3.0) < 0.05 and abs(alphas[5] - 1.5) < 0.05
    total = (3.0**2 + 1.5**2) / 2
    assert abs(explained - total / (total + 0.3**2)) < 0.02
    assert cos_term_fit(logits, (1, 3))[0] < 0.01


def test_restricted_and_excluded_losses_split_the_planted_algorithm():
    p = 13
    data = modular_data(p, 0.3, seed=0)
    keys = {1: 15.0, 4: 15.0, 6: 15.0}  # several frequencies: one alone has near-ties at c = a + b ± d
    logits = _planted_logits(p, keys)
    memorised = torch.zeros(p, p, p, dtype=torch.float64)  # a lookup table of the training answers only
    flat = memorised.view(-1, p)
    flat[data.is_train, data.labels[data.is_train]] = 12.0
    restricted, excluded = restricted_and_excluded(logits + memorised, tuple(keys), data)
    pure_r, pure_e = restricted_and_excluded(logits, tuple(keys), data)
    assert pure_r < 0.1 and pure_e > math.log(p) - 0.1  # the algorithm: all in the key span
    assert excluded < 0.1  # the lookup table alone still fits the training pairs
    assert restricted < 1.0  # the table barely reaches the key span


def test_key_frequencies_from_a_planted_embedding():
    p = 17
    config = GrokkingConfig(p=p, d_model=16, n_heads=4, d_mlp=32)
    model = grokking_model(config)
    basis, freqs = fourier_basis(p)
    assert torch.allclose(basis @ basis.T, torch.eye(len(freqs), dtype=torch.float64), atol=1e-9)
    rows = [i for i, k in enumerate(freqs) if k in (3, 7)]
    embed = torch.randn(len(rows), 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        wte = model.hf_model.transformer.wte.weight
        wte[:p] = (basis[rows].T @ embed).float() + 0.01 * torch.randn(p, 16)
    shares = embedding_fourier_shares(model, p)
    assert abs(float(shares.sum()) - 1) < 1e-5
    assert set(key_frequencies(shares)) == {3, 7}


def test_phases_read_from_a_history():
    history = {"eval_step": [100, 200, 300, 400, 500, 600],
               "train_acc": [0.5, 1.0, 1.0, 1.0, 1.0, 1.0],
               "test_acc": [0.01, 0.01, 0.02, 0.3, 0.995, 1.0],
               "test_loss": [5.0, 9.0, 10.0, 6.0, 0.1, 0.01]}
    assert grokking_phases(history) == (200, 400, 500)


def test_config_names_the_bad_field():
    with pytest.raises(InputError, match="GrokkingConfig.p must be a prime"):
        GrokkingConfig(p=12)
    with pytest.raises(InputError, match="train_fraction"):
        GrokkingConfig(train_fraction=1.0)


@pytest.mark.slow
def test_quick_run_groks_and_finds_its_frequencies(tmp_path):
    run = train_grokking(GrokkingConfig.quick(), checkpoint_dir=tmp_path, progress=False)
    analysis = analyse_grokking(run, progress=False)
    assert analysis.final_test_accuracy > 0.98
    assert analysis.memorised_at is not None and analysis.generalised_at is not None
    assert analysis.memorised_at < analysis.generalised_at
    assert 2 <= len(analysis.key_frequencies) <= 8
    assert analysis.variance_explained > 0.8 > analysis.variance_explained_control


def test_more_steps_continue_a_cached_run_and_fewer_are_refused(tmp_path):
    small = dict(p=11, d_model=32, n_heads=4, d_mlp=64, checkpoint_every=5, eval_every=3, snapshot_every=6)
    whole = train_grokking(GrokkingConfig(**small, steps=12), checkpoint_dir=tmp_path / "a", progress=False)
    train_grokking(GrokkingConfig(**small, steps=6), checkpoint_dir=tmp_path / "b", progress=False)
    extended = train_grokking(GrokkingConfig(**small, steps=12), checkpoint_dir=tmp_path / "b", progress=False)
    assert extended.resumed_from == 6 and extended.history["train_loss"] == whole.history["train_loss"]
    for name, value in whole.model.hf_model.state_dict().items():
        assert torch.equal(value, extended.model.hf_model.state_dict()[name]), name
    with pytest.raises(InputError, match="more than the 4 asked for"):
        train_grokking(GrokkingConfig(**small, steps=4), checkpoint_dir=tmp_path / "b", progress=False)
