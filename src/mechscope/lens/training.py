"""Training a tuned lens: fit every layer's translator to the model's own output.

Each step runs one batch through the frozen model once (no gradients), keeping the
residual before every block and the final log-probabilities, then trains all
translators on it together, minimising KL(final ‖ lens) at every real token::

    lens = train_tuned_lens(model, default_texts(), config=TunedLensConfig(token_budget=50_000))

Translators are independent, so each layer's loss is back-propagated on its own (only
into that translator) and the optimizer steps once for all of them: memory holds one
layer's logits at a time, never ``n_layers`` of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import count
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.corpus import token_batches
from mechscope.errors import InputError
from mechscope.lens.readout import (
    CHUNK_ELEMENTS,
    LensInputs,
    final_norm,
    kl_from_final,
    read_lens_inputs,
    softcap,
    unembedding,
)
from mechscope.lens.tuned_lens import TunedLens

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

OPTIMIZERS = ("adam", "sgd")
UNEMBED_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True, kw_only=True)
class TunedLensConfig:
    """How to train a tuned lens."""

    token_budget: int = 16_384
    """Training tokens in all; the training text is cycled if it is shorter. 16K tokens
    take about 6 minutes on 2 CPU cores for smollm2-135m (bfloat16 unembedding) and
    already beat the logit lens at every layer; the paper used about 65M."""
    seq_len: int = 128
    """Tokens per training sequence."""
    batch_size: int = 4
    """Sequences per optimizer step (small budgets do better with more, smaller steps)."""
    optimizer: str = "sgd"
    """``sgd`` (Nesterov momentum, the paper's choice) or ``adam`` (AdamW)."""
    lr: float = 0.1
    """Peak learning rate; it decays linearly to zero over the run. The default is the
    tuned-lens code's SGD rate, 1.0 × (1 - momentum). Adam needs a far smaller rate
    (1e-3 diverged on smollm2-135m, 1e-4 barely moved in 8 steps); SGD is the tested path."""
    warmup_steps: int = 0
    """Steps of linear warm-up before the decay."""
    momentum: float = 0.9
    """SGD's Nesterov momentum, or Adam's beta1."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient of all translators together to this norm before a step, as the
    tuned-lens code does (None: no clipping). Early gradients are in the hundreds; without
    clipping the first steps overshoot."""
    weight_decay: float = 1e-3
    """Decay of A and b, i.e. toward the identity translator (the logit lens)."""
    unembed_dtype: str = "float32"
    """Precision of the unembedding matmuls while training (``float32`` or ``bfloat16``):
    bfloat16 roughly halves a step's time on CPUs with avx512_bf16 or AMX, and on GPUs;
    elsewhere it can be slower. Softmax and KL stay float32; evaluation is float32."""
    seed: int = 0
    """Shuffles the order of training sequences."""
    progress: bool = True
    """Show a progress bar with the running loss."""

    def __post_init__(self) -> None:
        for name in ("token_budget", "seq_len", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (2 if name == "seq_len" else 1):
                raise ValueError(f"TunedLensConfig.{name} must be a positive int (seq_len >= 2); received {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TunedLensConfig.optimizer must be one of {OPTIMIZERS}; received {self.optimizer!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TunedLensConfig.lr must be a positive number; received {self.lr!r}")
        if self.unembed_dtype not in UNEMBED_DTYPES:
            raise ValueError(
                f"TunedLensConfig.unembed_dtype must be one of {tuple(UNEMBED_DTYPES)}; received {self.unembed_dtype!r}"
            )
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TunedLensConfig.warmup_steps must be an int >= 0; received {self.warmup_steps!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"TunedLensConfig.momentum must lie in [0, 1); received {self.momentum!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"TunedLensConfig.max_grad_norm must be > 0 or None; received {self.max_grad_norm!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"TunedLensConfig.weight_decay must be >= 0; received {self.weight_decay!r}")

    @property
    def steps(self) -> int:
        """Optimizer steps the token budget buys."""
        return math.ceil(self.token_budget / (self.seq_len * self.batch_size))


def train_tuned_lens(model: HookedModel, texts: Sequence[str], *, config: TunedLensConfig | None = None) -> TunedLens:
    """Train a :class:`TunedLens` for ``model`` on the training split of ``texts``.

    The model is frozen: it runs without gradients and none of its parameters change or
    receive ``.grad``. Returns the lens with ``training_info`` filled in.
    """
    config = config or TunedLensConfig()
    lens = TunedLens(model)
    optimizer = _optimizer(lens, config)
    steps = config.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, steps, config.warmup_steps))
    start, cpu_start, seen, first, last = time.perf_counter(), time.process_time(), 0, None, None
    bar = tqdm(total=steps, desc="tuned lens", unit="step", disable=not config.progress)
    try:
        for _, batch in zip(range(steps), _cycle(model, texts, config)):
            run = read_lens_inputs(model, batch)
            layer_kl = train_step(lens, run, unembed_dtype=UNEMBED_DTYPES[config.unembed_dtype])
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(lens.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            seen += int(run.mask.sum())
            first = layer_kl if first is None else first
            last = layer_kl
            bar.set_postfix(kl=f"{float(layer_kl.mean()):.3f}", tokens=seen)
            bar.update()
    finally:
        bar.close()
    lens.training_info = {
        "config": asdict(config),
        "tokens": seen,
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),  # all threads: meaningful on a shared machine
        "first_step_kl": [round(float(v), 4) for v in first],
        "last_step_kl": [round(float(v), 4) for v in last],
    }
    return lens


def train_step(lens: TunedLens, batch: LensInputs, *, unembed_dtype: torch.dtype = torch.float32) -> Tensor:
    """Accumulate every translator's gradient of its mean KL(final ‖ lens) on one batch;
    returns that KL per layer (before the update)."""
    model = lens.model
    mask = batch.mask.bool()
    final_logprobs = batch.final_logprobs[mask]
    final_probs = final_logprobs.exp()
    neg_entropy = (final_probs * final_logprobs).sum(-1)  # Σ p log p per token, shared by all layers
    n_tokens, d_vocab = final_probs.shape
    weight, bias = unembedding(model)
    weight = weight.to(unembed_dtype)
    fused = softcap(model) is None
    chunk = max(1, CHUNK_ELEMENTS // d_vocab)
    layer_kl = torch.zeros(lens.n_layers)
    for layer in range(lens.n_layers):
        resid = batch.resid[layer][mask]
        params = list(lens.translators[layer].parameters())
        for lo in range(0, n_tokens, chunk):
            rows = slice(lo, lo + chunk)
            if fused:
                normed = final_norm(model, lens.translate(resid[rows], layer))
                kl = _UnembedKL.apply(normed, weight, bias, final_probs[rows], neg_entropy[rows].sum())
            else:  # soft-capped logits: let autograd differentiate the tanh
                kl = kl_from_final(final_logprobs[rows], lens.apply(resid[rows], layer)).sum()
            kl = kl / n_tokens
            # Only this translator's gradient: nothing flows into the frozen model.
            kl.backward(inputs=params)
            layer_kl[layer] += float(kl.detach())
    return layer_kl


class _UnembedKL(torch.autograd.Function):
    """Σ_tokens KL(p_final ‖ softmax(normed · W_U + b_U)), differentiable in ``normed``.

    The gradient with respect to the logits is just ``softmax(logits) - p_final``, so
    this keeps that one (tokens × vocab) tensor instead of the several that autograd
    through log_softmax and kl_div keeps, and spends less time on them than on the
    matmuls. ``weight`` may be bfloat16: the matmuls then run about twice as fast on
    CPUs with avx512_bf16 or AMX, while the softmax stays in float32.
    """

    @staticmethod
    def forward(ctx, normed, weight, bias, final_probs, neg_entropy):
        logits = F.linear(normed.to(weight.dtype), weight).float()
        if bias is not None:
            logits += bias.float()
        lse = torch.logsumexp(logits, -1, keepdim=True)
        # KL = Σ p log p - Σ p·logits + logsumexp(logits), per token
        kl = neg_entropy - torch.einsum("nv,nv->", final_probs, logits) + lse.sum()
        grad_logits = logits.sub_(lse).exp_().sub_(final_probs)  # in place: logits are done
        ctx.save_for_backward(grad_logits, weight)
        ctx.normed_dtype = normed.dtype
        return kl

    @staticmethod
    def backward(ctx, grad_kl):
        grad_logits, weight = ctx.saved_tensors
        grad_normed = (grad_logits * grad_kl).to(weight.dtype) @ weight
        return grad_normed.to(ctx.normed_dtype), None, None, None, None


def _optimizer(lens: TunedLens, config: TunedLensConfig) -> torch.optim.Optimizer:
    params = list(lens.parameters())
    if config.optimizer == "adam":
        return torch.optim.AdamW(params, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
                           weight_decay=config.weight_decay)


def _lr_factor(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1 - (step - warmup) / max(1, steps - warmup))


def _cycle(model: HookedModel, texts: Sequence[str], config: TunedLensConfig) -> Iterator[Tensor]:
    """Training batches, epoch after epoch (reshuffled each time) until the caller stops."""
    if isinstance(texts, str) or not texts:
        raise InputError("texts must be a non-empty list of strings (e.g. mechscope.corpus.default_texts())")
    for epoch in count():
        yield from token_batches(model, texts, seq_len=config.seq_len, batch_size=config.batch_size,
                                 split="train", seed=config.seed + epoch)
