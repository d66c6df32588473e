"""Checkpoints: an interrupted run resumes to exactly the result of an uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch

from mechscope.activations.source import TensorSource
from mechscope.errors import InputError
from mechscope.sae import SAEConfig
from mechscope.sae.train import TrainConfig, train_sae

D_IN, D_SAE = 16, 256


class Interrupted(Exception):
    """Stands in for a crash, a pre-emption or Ctrl-C in the middle of training."""


class CrashAfter:
    """A source that raises once ``batches`` batches have been read (all passes together)."""

    def __init__(self, source: TensorSource, batches: int) -> None:
        self.source, self.left, self.d_in = source, batches, source.d_in

    def batches(self, batch_size, *, seed=0, start=0):
        for batch in self.source.batches(batch_size, seed=seed, start=start):
            if self.left == 0:
                raise Interrupted
            self.left -= 1
            yield batch


def _source():
    gen = torch.Generator().manual_seed(0)
    return TensorSource(torch.randn(1024, D_IN, generator=gen) * 3 + 1)  # 8 batches of 128: runs span epochs


def _config(**overrides):
    # dead_tokens_threshold small enough that latents die and AuxK takes part
    base = {"total_steps": 20, "batch_size": 128, "lr": 3e-3, "lr_warmup_steps": 3, "sparsity_warmup_steps": 5,
            "dead_tokens_threshold": 256, "aux_k": 4, "init_batches": 2, "checkpoint_every": 5}
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize("architecture", ["topk", "batchtopk", "jumprelu"])
def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path, architecture):
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture=architecture, k=2 if "topk" in architecture else None)
    config = _config()
    straight = train_sae(cfg, _source(), config, progress=False)

    # init reads 2 batches; the crash comes while step 13 (0-based 12) asks for its batch
    with pytest.raises(Interrupted):
        train_sae(cfg, CrashAfter(_source(), 2 + 12), config, checkpoint_dir=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000005", "step-000000010"]
    resumed = train_sae(cfg, _source(), config, checkpoint_dir=tmp_path, progress=False)

    assert resumed.resumed_from == 10 and resumed.steps == straight.steps == 20
    for (name, a), (_, b) in zip(straight.sae.state_dict().items(), resumed.sae.state_dict().items()):
        assert torch.equal(a, b), name
    for field in ("loss", "mse", "l0", "dead_fraction", "lr"):
        assert torch.equal(getattr(straight.history, field), getattr(resumed.history, field)), field
    if architecture != "jumprelu":  # (its latents all still fire after 20 steps)
        assert float(straight.history.dead_fraction.max()) > 0  # dead-latent counters (and AuxK) were restored too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000015", "step-000000020"]

    again = train_sae(cfg, _source(), config, checkpoint_dir=tmp_path, progress=False)  # already finished
    assert again.resumed_from == 20 and torch.equal(again.sae.W_enc, straight.sae.W_enc)


def test_a_checkpoint_is_safetensors_and_json(tmp_path):
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4)
    train_sae(cfg, _source(), _config(total_steps=5), checkpoint_dir=tmp_path, progress=False)
    (step,) = tmp_path.iterdir()
    assert sorted(p.name for p in step.iterdir()) == ["optimizer.safetensors", "sae.safetensors", "state.json",
                                                       "state.safetensors"]
    meta = json.loads((step / "state.json").read_text())
    assert meta["step"] == 5 and meta["epoch"] == 0 and meta["position"] == 5


def test_resuming_with_another_config_is_refused(tmp_path):
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=4)
    train_sae(cfg, _source(), _config(total_steps=5), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match=r"different TrainConfig \(lr: checkpoint 0.003 vs now 0.01\)"):
        train_sae(cfg, _source(), _config(total_steps=5, lr=1e-2), checkpoint_dir=tmp_path, progress=False)
    other = SAEConfig(d_in=D_IN, d_sae=D_SAE, architecture="topk", k=8)
    with pytest.raises(InputError, match="different SAEConfig"):
        train_sae(other, _source(), _config(total_steps=5), checkpoint_dir=tmp_path, progress=False)
    # how often checkpoints are written does not change the result, so it may change
    train_sae(cfg, _source(), _config(total_steps=5, checkpoint_every=2), checkpoint_dir=tmp_path, progress=False)
