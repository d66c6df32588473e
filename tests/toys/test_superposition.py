"""The ReLU output model and Elhage et al.'s measures, on planted weights (fast) and on
quick training runs (the pentagon; slow: sticky dimensionalities, the SAE recovering the features)."""

from __future__ import annotations

import math

import pytest
import torch

from mechscope.errors import InputError
from mechscope.toys.superposition import (
    ReLUOutputModel,
    SuperpositionConfig,
    SuperpositionTraining,
    feature_batch,
    train_superposition,
)
from mechscope.toys.superposition_analysis import (
    analyse_geometry,
    analyse_phase_diagram,
    feature_dimensionality,
    geometry_config,
    phase_config,
)


def _run(W: torch.Tensor, config: SuperpositionConfig) -> SuperpositionTraining:
    return SuperpositionTraining(W=W, b=torch.zeros(W.shape[0], W.shape[2]), loss=torch.zeros(W.shape[0]),
                                 config=config)


def test_feature_batch_has_the_asked_sparsity():
    x = feature_batch(20_000, torch.tensor([0.0, 0.9]), 5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 2, 5) and x.min() >= 0 and x.max() <= 1
    assert abs(float((x[:, 0] > 0).float().mean()) - 1.0) < 1e-3
    assert abs(float((x[:, 1] > 0).float().mean()) - 0.1) < 0.01


def test_model_is_relu_of_wtw_plus_b():
    model = ReLUOutputModel(3, 5, 2, seed=0)
    x = torch.rand(4, 3, 5)
    i = 1
    expected = torch.relu(x[:, i] @ model.W[i].T @ model.W[i] + model.b[i])
    assert torch.allclose(model(x)[:, i], expected, atol=1e-6)


def test_dimensionality_of_planted_configurations():
    angles = torch.arange(5) * 2 * math.pi / 5
    pentagon = torch.stack([torch.cos(angles), torch.sin(angles)])  # 5 unit vectors in 2 dims
    antipodal = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])  # a pair sharing a dim, one alone
    D = feature_dimensionality(torch.stack([pentagon, torch.cat([antipodal, torch.zeros(2, 2)], 1)]))
    assert torch.allclose(D[0], torch.full((5,), 0.4), atol=1e-5)
    assert torch.allclose(D[1], torch.tensor([0.5, 0.5, 1.0, 0.0, 0.0]), atol=1e-5)  # unrepresented: 0


def test_geometry_reads_a_planted_pentagon_and_a_dense_pair():
    config = SuperpositionConfig(n_features=5, n_hidden=2, sparsities=(0.0, 0.95))
    angles = torch.arange(5) * 2 * math.pi / 5 + 0.3
    dense = torch.zeros(2, 5)
    dense[0, 0], dense[1, 1] = 1.0, 1.0
    geometry = analyse_geometry(_run(torch.stack([dense, torch.stack([torch.cos(angles), torch.sin(angles)])]), config))
    assert geometry.n_represented == (2, 5) and geometry.dense_cosine < 1e-6 and geometry.is_pentagon
    assert all(abs(g - 72) < 1e-4 for g in geometry.sparse_gaps_degrees)
    square = torch.stack([torch.cos(angles[:4] * 5 / 4), torch.sin(angles[:4] * 5 / 4)])
    not_pentagon = torch.cat([square, torch.zeros(2, 1)], 1)
    assert not analyse_geometry(_run(torch.stack([dense, not_pentagon]), config)).is_pentagon


def test_phase_classification_on_planted_weights():
    config = phase_config(quick=True)
    n = len(config.sparsities)
    W = torch.zeros(n, 1, 2)
    W[:, 0, 0] = 1.0  # default: only the first feature represented
    W[n - 1, 0, 1], W[n - 1, 0, 0] = 1.0, 0.0  # last cell: the extra feature alone (dedicated)
    W[n - 2, 0, 1] = -1.0  # next to last: both, antipodal (superposition)
    phase = analyse_phase_diagram(_run(W, config))
    flat = [p for row in phase.phase for p in row]
    assert flat[-1] == 1 and flat[-2] == 2 and flat[0] == 0 and phase.antipodal == 1.0
    assert phase.counts() == {"not represented": n - 2, "dedicated dimension": 1, "superposition": 1}


def test_config_validation_names_the_field():
    with pytest.raises(InputError, match="SuperpositionConfig.sparsities"):
        SuperpositionConfig(n_features=5, n_hidden=2, sparsities=(1.0,))
    with pytest.raises(InputError, match="importances"):
        SuperpositionConfig(n_features=2, n_hidden=1, sparsities=(0.5,), importances=((1.0,),))


def test_quick_training_gives_the_pentagon_and_the_dense_pair():
    geometry = analyse_geometry(train_superposition(geometry_config(quick=True), progress=False))
    assert geometry.is_pentagon  # S = 0.97: all five, 72° apart
    assert geometry.n_represented[0] == 2 and geometry.dense_cosine < 0.1  # S = 0: two orthogonal
    assert bool((geometry.norms[0, :2] > 0.9).all())  # ... and they are the two most important


@pytest.mark.slow
def test_sae_recovers_the_true_features():
    from mechscope.toys.superposition_sae import analyse_sae_recovery, sae_recovery_config

    recovery = analyse_sae_recovery(train_superposition(sae_recovery_config(quick=True), progress=False), steps=1500)
    assert recovery.n_represented == 32
    assert recovery.mean_max_cosine >= 0.9 > recovery.control_mean_max_cosine + 0.1


@pytest.mark.slow
def test_quick_training_sticks_at_the_small_fractions():
    from mechscope.toys.superposition_analysis import analyse_dimensionality, dimensionality_config

    dims = analyse_dimensionality(train_superposition(dimensionality_config(quick=True), progress=False))
    assert dims.dims_per_feature[0] > 0.95 > dims.dims_per_feature[-1]  # dense: a dimension each; sparse: shared
    # 100 features into 10 (benchmarks/results/toys_superposition_quick.json: 41.7% vs 18.6%)
    assert dims.near_sticky > 2 * dims.near_sticky_uniform
