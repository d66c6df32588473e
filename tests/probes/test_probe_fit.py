"""Probe fits against their references, splits, configs and controls on synthetic features."""

from __future__ import annotations

import pytest
import torch

from mechscope.activations.positions import Position
from mechscope.errors import InputError
from mechscope.probes.data import ProbeData, split_examples
from mechscope.probes.fit import ProbeConfig, fit_logistic, fit_probe, fit_ridge, logistic_loss
from mechscope.probes.probe import probe_features, top_features


def _data(labels: torch.Tensor, types=None, classes=("a", "b")) -> ProbeData:
    n = len(labels)
    return ProbeData(name="synthetic", texts=tuple(f"t{i}" for i in range(n)), labels=labels,
                     positions=(Position(),) * n, classes=classes, types=types)


def test_ridge_matches_least_squares_on_the_augmented_system():
    generator = torch.Generator().manual_seed(0)
    for n, d in ((40, 10), (12, 30)):  # primal and dual forms
        z = torch.randn(n, d, generator=generator, dtype=torch.float64)
        y = torch.randn(n, generator=generator, dtype=torch.float64)
        weight, _ = fit_ridge(z, y, penalty=0.3, n_out=1, max_iter=1)
        augmented = torch.cat([z, (0.3 * n) ** 0.5 * torch.eye(d, dtype=z.dtype)])
        reference = torch.linalg.lstsq(augmented, torch.cat([y, torch.zeros(d, dtype=y.dtype)])).solution
        torch.testing.assert_close(weight[0], reference, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_fit_sits_at_the_penalised_optimum(n_classes):
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(90, 8, generator=generator, dtype=torch.float64)
    y = torch.randint(n_classes, (90,), generator=generator)
    weight, bias = fit_logistic(z, y, penalty=0.05, n_out=n_classes, max_iter=200)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    grads = torch.autograd.grad(logistic_loss(z, y, weight, bias, 0.05), [weight, bias])
    assert max(float(g.abs().max()) for g in grads) < 1e-5


def test_a_planted_direction_is_found_and_shuffled_labels_are_at_chance():
    generator = torch.Generator().manual_seed(2)
    labels = torch.arange(400) % 2
    x = torch.randn(400, 32, generator=generator)
    x[:, [4, 19]] += 3.0 * (2 * labels[:, None] - 1)
    result = probe_features(x, _data(labels), [str(i) for i in range(400)], config=ProbeConfig(penalties=(0.1,)))
    assert result.test_score > 0.97 and abs(result.shuffled_score - 0.5) < 0.12 and result.chance == 0.5
    planted = torch.zeros(32)
    planted[[4, 19]] = 2 ** -0.5
    assert float(result.direction @ planted) > 0.9
    sparse = probe_features(x, _data(labels), [str(i) for i in range(400)], k=2, config=ProbeConfig(penalties=(0.1,)))
    assert sparse.features == (4, 19) and sparse.test_score > 0.97
    assert top_features(x, labels, ("a", "b"), 2).tolist() == [4, 19]


def test_memorisable_word_types_raise_the_control_task_and_lower_selectivity():
    """Hewitt & Liang: when each word type has its own embedding, a probe can learn random
    labels per type, so the control task rises and selectivity falls; with a type per
    example nothing carries over to the test part."""
    generator = torch.Generator().manual_seed(3)
    n, n_types = 300, 12
    types = torch.randint(n_types, (n,), generator=generator)
    labels = (types % 2).long()  # a lexical property: a function of the word type
    embeddings = torch.randn(n_types, 48, generator=generator) * 3
    x = embeddings[types] + 0.3 * torch.randn(n, 48, generator=generator)
    config = ProbeConfig(penalties=(1e-3, 1e-1))
    repeated = probe_features(x, _data(labels), [str(int(t)) for t in types], config=config)
    unique = probe_features(x, _data(labels), [str(i) for i in range(n)], config=config)
    assert repeated.test_score > 0.97 and unique.test_score > 0.97
    assert repeated.control_score > 0.8 and abs(unique.control_score - 0.5) < 0.12
    assert repeated.selectivity < unique.selectivity - 0.3


def test_ridge_probe_reads_a_linear_value_with_r2_near_one():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(300, 20, generator=generator)
    values = 5 * x[:, 3] - 2 * x[:, 7] + 100 + 0.05 * torch.randn(300, generator=generator)
    result = probe_features(x, _data(values, classes=()), [str(i) for i in range(300)])
    assert result.kind == "ridge" and result.metric == "r2"
    assert result.test_score > 0.99 and result.shuffled_score < 0.1 and result.chance == 0.0


def test_validation_chooses_a_penalty_and_ties_go_to_the_stronger_one():
    generator = torch.Generator().manual_seed(5)
    labels = torch.randint(2, (200,), generator=generator)
    x = torch.randn(200, 4, generator=generator)
    x[:, 0] += 5.0 * (2 * labels - 1)  # a wide margin: every penalty separates the validation part
    split = split_examples(200, seed=0, strata=labels)
    probe, val = fit_probe(x, labels, split, ProbeConfig(penalties=(1e-3, 1e-2)), classes=("a", "b"))
    assert val == 1.0 and probe.penalty == 1e-2


def test_stratified_splits_are_disjoint_cover_and_keep_class_shares():
    labels = torch.tensor([0] * 30 + [1] * 70)
    split = split_examples(100, seed=7, strata=labels)
    together = torch.cat([split.train, split.val, split.test])
    assert sorted(together.tolist()) == list(range(100))
    assert [int(labels[part].sum()) for part in (split.train, split.val, split.test)] == [42, 14, 14]
    assert torch.equal(split.test, split_examples(100, seed=7, strata=labels).test)  # seeded


@pytest.mark.parametrize("options, message", [
    (dict(kind="svm"), "ProbeConfig.kind must be one of"), (dict(penalties=(0.1, -1)), "ProbeConfig.penalties"),
    (dict(max_iter=0), "ProbeConfig.max_iter"), (dict(seed=-1), "ProbeConfig.seed"),
    (dict(shuffles=0), "ProbeConfig.shuffles"),
])
def test_bad_configs_name_their_field(options, message):
    with pytest.raises(InputError, match=message):
        ProbeConfig(**options)


def test_probe_kind_must_fit_the_labels():
    x = torch.randn(30, 3)
    with pytest.raises(InputError, match="a ridge probe needs numeric values"):
        probe_features(x, _data(torch.arange(30) % 2), [str(i) for i in range(30)], config=ProbeConfig(kind="ridge"))
