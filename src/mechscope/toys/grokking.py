"""Grokking modular addition (Power et al. 2022; Nanda et al. 2023, "Progress measures for
grokking via mechanistic interpretability").

A one-layer transformer reads ``a b =`` and predicts ``(a + b) mod p`` at ``=``. Trained
full-batch on 30% of the ``p²`` pairs with strong weight decay, it first memorises the
training pairs (test accuracy at chance), then, thousands of epochs later, generalises:
it has learned to add by rotating in a few Fourier frequencies
(:mod:`mechscope.toys.grokking_analysis` reads them out)::

    from mechscope.toys.grokking import GrokkingConfig, train_grokking

    run = train_grokking(GrokkingConfig())           # p = 113, Nanda et al.'s setup, cached
    run.history["test_acc"][-1], run.model           # 1.0, HookedModel('grokking-toy', ...)
    quick = train_grokking(GrokkingConfig.quick())   # p = 53: a few minutes

Nanda et al.'s setup is the default: one layer, d_model 128, 4 heads, d_mlp 512, ReLU, no
LayerNorm (see :mod:`mechscope.toys.gpt2`), weights initialised with standard deviation
``1/sqrt(d_model)`` as theirs (GPT-2's 0.02 starts the weights so small that the model
generalises without first memorising: no grokking, as Liu et al.'s "Omnigrok" explains), AdamW (lr 1e-3, weight decay 1.0, betas
0.9/0.98, 10 steps of linear warm-up), full batch, cross-entropy at ``=`` in float64.
Runs are cached and resume from checkpoints (:mod:`mechscope.toys.training`), and keep a
snapshot of the weights every ``snapshot_every`` epochs for the progress measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.toys.gpt2 import ToyShape, toy_gpt2, trainable, word_tokenizer
from mechscope.toys.training import TrainedToy, checkpoint_directory, resumable_training, snapshots, torch_threads


@dataclass(frozen=True, kw_only=True)
class GrokkingConfig:
    """Modular addition and its training; the defaults are Nanda et al.'s."""

    p: int = 113
    """The modulus (a prime, so every non-zero frequency is a generator)."""
    train_fraction: float = 0.3
    """Share of the ``p²`` pairs trained on; the rest is the test set."""
    d_model: int = 128
    """Residual width."""
    n_heads: int = 4
    """Attention heads."""
    d_mlp: int = 512
    """ReLU neurons."""
    lr: float = 1e-3
    """AdamW's learning rate (after a 10-step linear warm-up)."""
    weight_decay: float = 1.0
    """AdamW's decoupled weight decay (on every trained weight)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW's betas."""
    steps: int = 20_000
    """Full-batch steps (epochs)."""
    eval_every: int = 100
    """Epochs between measurements of train and test loss and accuracy."""
    snapshot_every: int = 200
    """Epochs between kept weight snapshots (for the progress measures)."""
    checkpoint_every: int = 1000
    """Epochs between checkpoints."""
    seed: int = 0
    """Seeds the train/test split and the initial weights."""
    threads: int | None = 1
    """torch threads while training (None: every core)."""

    EXTENDABLE = ("steps",)  # constant learning rate after warm-up: more steps continue a cached run

    def __post_init__(self) -> None:
        if self.p < 5 or any(self.p % q == 0 for q in range(2, int(self.p**0.5) + 1)):
            raise InputError(f"GrokkingConfig.p must be a prime of at least 5; received {self.p}")
        if not 0 < self.train_fraction < 1:
            raise InputError(f"GrokkingConfig.train_fraction must be in (0, 1); received {self.train_fraction}")
        for field in ("d_model", "n_heads", "d_mlp", "steps", "eval_every", "snapshot_every", "checkpoint_every"):
            if getattr(self, field) < 1:
                raise InputError(f"GrokkingConfig.{field} must be at least 1; received {getattr(self, field)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise InputError(f"GrokkingConfig.lr must be > 0 and weight_decay >= 0; received {self.lr}, "
                             f"{self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"GrokkingConfig.betas must be two numbers in [0, 1); received {self.betas}")

    @classmethod
    def quick(cls, **overrides) -> GrokkingConfig:
        """A smaller modulus, half the pairs and a higher learning rate: memorises within
        about 200 steps and generalises by about 600 (a few minutes on one busy core)."""
        return cls(**{"p": 53, "train_fraction": 0.5, "lr": 3e-3, "steps": 1500, "eval_every": 50,
                      "snapshot_every": 50, **overrides})

    @property
    def shape(self) -> ToyShape:
        return ToyShape(d_vocab=self.p + 1, n_ctx=3, d_model=self.d_model, n_layers=1, n_heads=self.n_heads,
                        d_mlp=self.d_mlp, activation="relu", layer_norm=False,
                         init_std=self.d_model**-0.5)


@dataclass(frozen=True)
class ModularData:
    """Every ``a b =`` input, its answer, and which pairs are trained on."""

    inputs: Int[Tensor, "pair 3"]
    """``a b =`` token ids, pair ``a * p + b`` in row ``a * p + b`` (``=`` is token ``p``)."""
    labels: Int[Tensor, "pair"]
    """``(a + b) mod p``."""
    is_train: Bool[Tensor, "pair"]
    """True for the training pairs (a seeded random ``train_fraction`` of them)."""
    p: int
    """The modulus."""


def modular_data(p: int, train_fraction: float, seed: int) -> ModularData:
    """All ``p²`` pairs in order, with a seeded random training subset."""
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    inputs = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    order = torch.randperm(p * p, generator=torch.Generator().manual_seed(seed))
    is_train = torch.zeros(p * p, dtype=torch.bool)
    is_train[order[: round(train_fraction * p * p)]] = True
    return ModularData(inputs=inputs, labels=(a + b) % p, is_train=is_train, p=p)


def grokking_model(config: GrokkingConfig) -> HookedModel:
    """A freshly initialised (seeded) one-layer model, wrapped."""
    words = [str(i) for i in range(config.p)] + ["="]
    return HookedModel(toy_gpt2(config.shape, seed=config.seed), word_tokenizer(words), name="grokking-toy")


def answer_logits(model: HookedModel, inputs: Int[Tensor, "pair 3"]) -> Float[Tensor, "pair p"]:
    """Logits over the ``p`` answers at ``=`` (the ``=`` token's own logit left out): the
    Hugging Face forward, the reference of :func:`fast_answer_logits`."""
    logits = model.hf_model(input_ids=inputs, use_cache=False).logits[:, -1]
    return logits[:, :-1]


def fast_answer_logits(model: HookedModel, inputs: Int[Tensor, "pair 3"]) -> Float[Tensor, "pair p"]:
    """:func:`answer_logits` computed at ``=`` only, through the model's own modules.

    In a one-layer model the answer needs the query, MLP and unembedding of the last
    position only, and the keys and values of each position depend on one token there
    alone: they are computed once per token (``p`` rows per position, not one per pair)
    and gathered. About four times fewer multiply-adds than the full forward; training
    uses this, and the tests hold it to the Hugging Face forward.
    """
    gpt = model.hf_model.transformer
    if len(gpt.h) != 1 or inputs.shape[1] != 3:
        raise InputError(f"fast_answer_logits needs a one-layer model and (pair, 3) inputs; received "
                         f"{len(gpt.h)} layers and shape {tuple(inputs.shape)}")
    block, d, n_heads = gpt.h[0], model.cfg.d_model, model.cfg.n_heads
    d_head = d // n_heads
    tokens = torch.arange(gpt.wte.weight.shape[0], device=inputs.device)
    table = block.ln_1(gpt.wte(tokens).unsqueeze(1) + gpt.wpe.weight[:3])  # (token, position, d_model)
    qkv = block.attn.c_attn(table)  # Conv1D: x @ weight + bias
    q = qkv[inputs[0, 2], 2, :d].view(n_heads, d_head)  # the query at "=" is the same for every pair
    k, v = qkv[..., d : 2 * d].view(*qkv.shape[:2], n_heads, d_head), qkv[..., 2 * d :].view(*qkv.shape[:2], n_heads, d_head)
    positions = torch.arange(3, device=inputs.device)
    k_pair, v_pair = k[inputs, positions], v[inputs, positions]  # (pair, position, head, d_head)
    pattern = (torch.einsum("hd,nphd->nhp", q, k_pair) / d_head**0.5).softmax(-1)
    z = torch.einsum("nhp,nphd->nhd", pattern, v_pair).reshape(-1, d)
    resid = gpt.wte(inputs[:, 2]) + gpt.wpe.weight[2] + block.attn.c_proj(z)
    resid = resid + block.mlp(block.ln_2(resid))
    return model.hf_model.lm_head(gpt.ln_f(resid))[:, :-1]


def loss_and_accuracy(logits: Float[Tensor, "pair p"], labels: Int[Tensor, "pair"]) -> tuple[Tensor, float]:
    """Cross-entropy in float64 (float32 rounds the tiny losses of a grokked model) and accuracy."""
    loss = torch.nn.functional.cross_entropy(logits.double(), labels)
    return loss, float((logits.argmax(-1) == labels).float().mean())


@dataclass(frozen=True)
class GrokkingTraining(TrainedToy):
    """A trained modular-addition model. ``history``: ``train_loss`` per epoch; per evaluation
    ``eval_step`` (epochs taken), ``eval_train_loss``/``test_loss`` (nats), ``train_acc``/``test_acc``
    and ``weight_norm`` (sum of squared weights). ``directory`` also holds the weight snapshots."""

    @property
    def data(self) -> ModularData:
        return modular_data(self.config.p, self.config.train_fraction, self.config.seed)

    def snapshot_models(self) -> list[tuple[int, HookedModel]]:
        """(epoch, model) for every kept weight snapshot, in order."""
        from safetensors.torch import load_file

        found = []
        for step, path in snapshots(self.directory) if self.directory is not None else []:
            model = grokking_model(self.config)
            model.hf_model.load_state_dict(load_file(path))
            found.append((step, model))
        return found


def train_grokking(config: GrokkingConfig = GrokkingConfig(), *, checkpoint_dir: str | Path | None = "cache",
                   progress: bool = True) -> GrokkingTraining:
    """Train (or load from the cache) a model on modular addition, full batch with AdamW.

    ``checkpoint_dir="cache"`` keeps the run under mechscope's cache dir (one directory per
    configuration: a finished run is loaded, an interrupted one resumed); a path keeps it
    there; None keeps nothing (and no snapshots).
    """
    directory = checkpoint_directory("grokking", config, checkpoint_dir)
    model = grokking_model(config)
    data = modular_data(config.p, config.train_fraction, config.seed)
    params = trainable(model.hf_model)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
    train_x, train_y = data.inputs[data.is_train], data.labels[data.is_train]

    def step_fn(step: int) -> dict[str, float]:
        for group in optimizer.param_groups:  # the warm-up as a function of the step: resumes exactly
            group["lr"] = config.lr * min(step / 10, 1.0)
        loss, _ = loss_and_accuracy(fast_answer_logits(model, train_x), train_y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"train_loss": loss.item()}

    def eval_fn(step: int) -> dict[str, float]:
        logits = fast_answer_logits(model, data.inputs)
        train_loss, train_acc = loss_and_accuracy(logits[data.is_train], train_y)
        test_loss, test_acc = loss_and_accuracy(logits[~data.is_train], data.labels[~data.is_train])
        return {"eval_train_loss": train_loss.item(), "test_loss": test_loss.item(), "train_acc": train_acc,
                "test_acc": test_acc, "weight_norm": float(sum((p.double() ** 2).sum() for p in params))}

    with torch_threads(config.threads):
        state = resumable_training(
            model=model.hf_model, optimizer=optimizer, config=config, steps=config.steps, step_fn=step_fn,
            eval_fn=eval_fn, eval_every=config.eval_every, directory=directory,
            checkpoint_every=config.checkpoint_every, snapshot_every=config.snapshot_every,
            desc=f"grokking p={config.p}", progress=progress)
    return GrokkingTraining(model=model, history=state.history, config=config, directory=directory,
                            resumed_from=state.resumed_from)

