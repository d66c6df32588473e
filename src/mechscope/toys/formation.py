"""Induction heads forming during training (Olsson et al. 2022, "In-context learning and
induction heads"): the loss bump, in-context learning and the heads, on one time axis.

Olsson et al. saw a *phase change* early in training: within a short window, induction
heads appear, in-context learning (loss on late tokens of a context minus loss on early
ones) jumps, and the training loss shows a bump. Here a small GPT-2 trains on a token
stream while, every ``eval_every`` steps, it is measured on held-out data and on
repeated random tokens (with :mod:`mechscope.heads`' pattern scores)::

    from mechscope.toys.formation import FormationConfig, train_formation

    run = train_formation(FormationConfig(attention_only=True))     # and attention_only=False: with MLPs
    run.history["induction_score"], run.history["icl_score"]
    analysis = analyse_formation([run, run_mlp]); analysis.plot()

Data (:data:`DATA_SOURCES`): ``text``, the characters of the standard library's
docstrings and comments (:mod:`mechscope.corpus`), where in-context learning is natural
(names and words recur within a context); ``repeats``, random tokens repeating with a random
period, trained on every token, where heads form within a few hundred
steps (the ``--quick`` runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Int
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.errors import InputError
from mechscope.heads.patterns import pattern_scores
from mechscope.heads.sequences import repeated_tokens
from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result
from mechscope.toys.gpt2 import ToyShape, toy_gpt2, trainable, word_tokenizer
from mechscope.toys.training import TrainedToy, checkpoint_directory, resumable_training, torch_threads

N_CHARS = 96
"""Text vocabulary: the 95 commonest characters of the corpus, and one id for every other."""
_ZERO_MLP = 4
"""Width of the zeroed, frozen MLPs of an attention-only model (they add exactly zero)."""


# ----------------------------------------------------------------------- data
@lru_cache(maxsize=1)
def text_stream() -> tuple[Int[Tensor, "char"], tuple[str, ...]]:
    """The standard-library prose as one stream of character ids, and the characters (id 0: any rare one).

    Ids are given by frequency (1: the commonest character); counted with numpy over
    the code points (a Python loop over the 4.8M characters takes tens of seconds).
    """
    from mechscope.corpus import stdlib_texts

    codes = np.frombuffer("\n\n".join(stdlib_texts()).encode("utf-32-le"), dtype=np.uint32)
    unique, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")[: N_CHARS - 1]
    lookup = np.zeros(len(unique), dtype=np.int64)
    lookup[order] = np.arange(1, len(order) + 1)
    chars = ("<rare>", *(chr(int(unique[i])) for i in order))
    return torch.from_numpy(lookup[inverse]), chars


def text_batch(n: int, seq_len: int, *, seed: int, held_out: bool = False) -> Int[Tensor, "batch pos"]:
    """``n`` random windows of the character stream: the first 95% trains, the last 5% is held out."""
    ids, _ = text_stream()
    split = int(len(ids) * 0.95)
    low, high = (split, len(ids) - seq_len) if held_out else (0, split - seq_len)
    starts = torch.randint(low, high, (n,), generator=torch.Generator().manual_seed(seed))
    return ids[starts.unsqueeze(1) + torch.arange(seq_len)]


def repeats_batch(n: int, seq_len: int, *, seed: int, held_out: bool = False) -> Int[Tensor, "batch pos"]:
    """Random tokens (1..63, uniform) repeating with a random period per sequence.

    The period is uniform in ``seq_len // 5 .. seq_len // 2``: after the first period
    every token is predictable in context, and only by finding the earlier occurrence
    of the current token (no fixed offset would do).
    """
    generator = torch.Generator().manual_seed(seed + (10**9 if held_out else 0))
    period = torch.randint(seq_len // 5, seq_len // 2 + 1, (n,), generator=generator)
    base = torch.randint(1, 64, (n, seq_len), generator=generator)
    index = torch.arange(seq_len).unsqueeze(0) % period.unsqueeze(1)
    return base.gather(1, index)


DATA_SOURCES: dict[str, tuple[Callable[..., Tensor], int]] = {"text": (text_batch, N_CHARS), "repeats": (repeats_batch, 64)}
"""Training data by name: (batch function, vocabulary size)."""


# ---------------------------------------------------------------------- model
@dataclass(frozen=True, kw_only=True)
class FormationConfig:
    """A small GPT-2, its data, and how often it is measured while it trains."""

    attention_only: bool = True
    """True: MLPs zeroed and frozen (Olsson et al.'s attention-only models); False: with MLPs."""
    data: str = "text"
    """One of :data:`DATA_SOURCES`."""
    n_layers: int = 2
    """Transformer blocks."""
    d_model: int = 64
    """Residual width."""
    n_heads: int = 4
    """Heads per block."""
    d_mlp: int = 256
    """MLP width when not attention-only."""
    seq_len: int = 128
    """Tokens per training sequence (the context)."""
    batch_size: int = 32
    """Sequences per step (fresh every step)."""
    steps: int = 3000
    """AdamW steps."""
    lr: float = 3e-3
    """Peak learning rate (linear warm-up over ``warmup`` steps, then constant)."""
    warmup: int = 100
    """Warm-up steps."""
    weight_decay: float = 0.01
    """AdamW's weight decay."""
    init_std: float = 0.1
    """Standard deviation of the initial weights (GPT-2's ``initializer_range``). With
    GPT-2's 0.02 the quick model stayed 2,000 steps on a solution that only raises the
    tokens already seen in the context (no induction head); at 0.1 heads formed by step 400."""
    eval_every: int = 50
    """Steps between measurements."""
    n_eval: int = 64
    """Held-out sequences per measurement."""
    checkpoint_every: int = 500
    """Steps between checkpoints."""
    seed: int = 0
    """Seeds the weights and the data."""
    threads: int | None = 1
    """torch threads while training (None: every core)."""

    EXTENDABLE = ("steps",)  # constant learning rate after warm-up: more steps continue a cached run

    def __post_init__(self) -> None:
        if self.data not in DATA_SOURCES:
            raise InputError(f"FormationConfig.data must be one of {', '.join(DATA_SOURCES)}; received {self.data!r}")
        for name in ("n_layers", "d_model", "n_heads", "d_mlp", "batch_size", "steps", "eval_every", "n_eval",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise InputError(f"FormationConfig.{name} must be at least 1; received {getattr(self, name)}")
        if self.seq_len < 20:
            raise InputError(f"FormationConfig.seq_len must be at least 20; received {self.seq_len}")
        if self.d_model % self.n_heads:
            raise InputError(f"FormationConfig.d_model must be a multiple of n_heads={self.n_heads}; received {self.d_model}")
        if not self.lr > 0 or self.warmup < 0:
            raise InputError(f"FormationConfig.lr must be > 0 and warmup >= 0; received {self.lr}, {self.warmup}")

    @classmethod
    def quick(cls, **overrides) -> FormationConfig:
        """Repeated random tokens, a short context and a few hundred steps."""
        return cls(**{"data": "repeats", "d_model": 64, "d_mlp": 256, "seq_len": 48, "batch_size": 32, "steps": 600,
                      "lr": 3e-3, "warmup": 20, "eval_every": 20, **overrides})

    @property
    def d_vocab(self) -> int:
        return DATA_SOURCES[self.data][1]

    @property
    def icl_positions(self) -> tuple[int, int]:
        """(early, late) token positions of the in-context-learning score: 10% and 90% into
        the context (Olsson et al.: tokens 50 and 500 of 512)."""
        return max(1, self.seq_len // 10), self.seq_len * 9 // 10


def formation_model(config: FormationConfig) -> HookedModel:
    """A fresh (seeded) GPT-2 of the config's shape; attention-only: MLPs zero and frozen."""
    shape = ToyShape(d_vocab=config.d_vocab, n_ctx=config.seq_len, d_model=config.d_model, n_layers=config.n_layers,
                     n_heads=config.n_heads, d_mlp=_ZERO_MLP if config.attention_only else config.d_mlp,
                     init_std=config.init_std)
    hf = toy_gpt2(shape, seed=config.seed)
    if config.attention_only:
        with torch.no_grad():
            for block in hf.transformer.h:
                for param in block.mlp.parameters():
                    param.zero_()
                    param.requires_grad_(False)
                for param in block.ln_2.parameters():  # only feeds the zero MLP
                    param.requires_grad_(False)
    words = [f"t{i}" for i in range(config.d_vocab)]
    kind = "attn-only" if config.attention_only else "mlp"
    return HookedModel(hf, word_tokenizer(words), name=f"formation-{kind}-{config.data}")


# ------------------------------------------------------------------- measures
def per_position_loss(model: HookedModel, ids: Int[Tensor, "batch pos"]) -> Tensor:
    """Mean next-token loss at each position (``pos - 1`` values: position ``i`` predicts ``i + 1``)."""
    logits = model.hf_model(input_ids=ids, use_cache=False).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    return loss.view(ids.shape[0], -1).mean(0)


def icl_score(position_loss: Tensor, early: int, late: int, window: int = 2) -> float:
    """Loss at the late token minus loss at the early token (each averaged over ±``window`` positions)."""
    at = lambda i: float(position_loss[max(i - window, 0) : i + window + 1].mean())  # noqa: E731
    return at(late) - at(early)


def head_pattern_scores(model: HookedModel, *, seq_len: int, seed: int = 0) -> dict[str, Tensor]:
    """Previous-token and induction pattern scores of every head, (layer, head), on repeated random tokens."""
    seqs = repeated_tokens(model, n_seqs=8, seq_len=seq_len, seed=seed, prepend_bos=False)
    per_layer: dict[int, dict[str, Tensor]] = {}

    def reduce(pattern: Tensor, hook) -> None:
        per_layer[hook.layer] = pattern_scores(pattern, seqs)

    with torch.no_grad(), model.hooks(fwd=[("blocks.*.attn.hook_pattern", reduce)]):
        model(seqs.ids)
    layers = range(model.cfg.n_layers)
    return {name: torch.stack([per_layer[layer][name] for layer in layers]) for name in ("previous_token", "induction")}


# ------------------------------------------------------------------- training
@dataclass(frozen=True)
class FormationTraining(TrainedToy):
    """A model trained while its induction heads were measured. ``history``: ``loss`` per
    step; per evaluation (``eval_step``): ``eval_loss``, ``icl_score``, ``induction_score``
    (best head in layers ≥ 1), ``previous_token_score`` (best head in layers below the last)
    and every head's scores as ``induction.L.H``, ``previous_token.L.H``."""


def train_formation(config: FormationConfig = FormationConfig(), *, checkpoint_dir: str | Path | None = "cache",
                    progress: bool = True) -> FormationTraining:
    """Train on ``config.data`` with AdamW (next-token loss on every token), measuring as it goes."""
    directory = checkpoint_directory("formation", config, checkpoint_dir)
    model = formation_model(config)
    params = trainable(model.hf_model)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    batch_fn = DATA_SOURCES[config.data][0]
    held_out = batch_fn(config.n_eval, config.seq_len, seed=config.seed, held_out=True)
    early, late = config.icl_positions
    repeat_len = min(40, (config.seq_len - 1) // 2)

    def step_fn(step: int) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / max(config.warmup, 1))
        ids = batch_fn(config.batch_size, config.seq_len, seed=config.seed * 1_000_003 + step)
        loss = per_position_loss(model, ids).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def eval_fn(step: int) -> dict[str, float]:
        position_loss = per_position_loss(model, held_out)
        heads = head_pattern_scores(model, seq_len=repeat_len)
        out = {"eval_loss": float(position_loss.mean()), "icl_score": icl_score(position_loss, early, late),
               "induction_score": float(heads["induction"][1:].max()),
               "previous_token_score": float(heads["previous_token"][:-1].max())}
        for name, scores in heads.items():
            for (layer, head), value in zip(torch.cartesian_prod(*map(torch.arange, scores.shape)).tolist(),
                                            scores.flatten().tolist()):
                out[f"{name}.{layer}.{head}"] = value
        return out

    with torch_threads(config.threads):
        model.hf_model.eval()
        with torch.no_grad():  # the measures before any training: the step-0 point of every curve
            initial = {"eval_step": 0.0, **eval_fn(-1)}
        state = resumable_training(
            model=model.hf_model, optimizer=optimizer, config=config, steps=config.steps, step_fn=step_fn,
            eval_fn=eval_fn, eval_every=config.eval_every, directory=directory,
            checkpoint_every=config.checkpoint_every, desc=f"formation {model.name}", progress=progress)
    history = state.history
    if history.get("eval_step", [None])[0] != 0.0:
        for key, value in initial.items():
            history.setdefault(key, []).insert(0, value)
    return FormationTraining(model=model, history=history, config=config, directory=directory,
                             resumed_from=state.resumed_from)


# ------------------------------------------------------------------- analysis
MEASURES = ("induction_score", "previous_token_score", "icl_score", "eval_loss")
"""The curves whose phase change is located (see :func:`halfway_step`)."""


def halfway_step(steps: list[float], values: list[float]) -> int | None:
    """First step at which ``values`` has made half its change from the first value to the
    mean of the last three (None if it never changes by more than 0.05)."""
    start, end = values[0], sum(values[-3:]) / len(values[-3:])
    if abs(end - start) < 0.05:
        return None
    middle = (start + end) / 2
    return next((int(s) for s, v in zip(steps, values) if (v - middle) * (end - start) >= 0), None)


def steepest_drop_step(steps: list[float], values: list[float], window: int = 3) -> int:
    """Step at which ``values`` (smoothed over ``window`` evaluations) falls fastest."""
    v = torch.tensor(values)
    smooth = torch.nn.functional.avg_pool1d(v.view(1, 1, -1), window, stride=1, padding=window // 2,
                                            count_include_pad=False).flatten()
    slope = smooth[1:] - smooth[:-1]
    return int(steps[int(slope.argmin()) + 1])


@dataclass(frozen=True)
class FormationAnalysis(Result):
    """When each measure changes, per model: Olsson et al.'s claim is that they change together."""

    labels: tuple[str, ...]
    """One per run (e.g. ``attention-only``, ``with MLPs``)."""
    phase_change: dict[str, dict[str, int | None]]
    """Per run, per measure of :data:`MEASURES`: the step at which it made half its change."""
    steepest_loss_drop: dict[str, int]
    """Per run: the step at which the held-out loss falls fastest (the bump in the loss curve)."""
    spread: dict[str, int | None]
    """Per run: largest minus smallest of the induction, previous-token and ICL phase-change steps
    and the steepest loss drop (small against the run's length: they change together)."""
    final: dict[str, dict[str, float]]
    """Per run: the last value of each measure."""
    initial: dict[str, dict[str, float]]
    """Per run: the value of each measure before training."""
    steps: dict[str, int]
    """Per run: steps trained."""
    histories: dict[str, dict[str, list[float]]]
    """Per run: the curves (``eval_step``, :data:`MEASURES`, and ``loss`` per step)."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        fig = Fig(figsize=(8, 9))
        axes = fig.subplots(4, 1, sharex=True)
        titles = ("training loss (nats, smoothed)", "in-context learning score: loss at 90% − at 10% of the context",
                  "induction score (best head, layers ≥ 1)", "previous-token score (best head, below the last layer)")
        for (label, h), colour in zip(self.histories.items(), ("tab:blue", "tab:red", "tab:green")):
            loss = torch.tensor(h["loss"])
            k = max(1, len(loss) // 100)
            smooth = torch.nn.functional.avg_pool1d(loss.view(1, 1, -1), k, stride=1).flatten()
            axes[0].plot(torch.arange(len(smooth)) + k // 2, smooth, color=colour, label=label)
            for ax, key in zip(axes[1:], ("icl_score", "induction_score", "previous_token_score")):
                ax.plot(h["eval_step"], h[key], color=colour, label=label)
            change = self.phase_change[label]["induction_score"]
            if change is not None:
                for ax in axes:
                    ax.axvline(change, color=colour, ls="--", lw=0.8)
        for ax, title in zip(axes, titles):
            ax.set_title(title, fontsize=9)
        axes[0].legend(fontsize=8, loc="upper right")
        axes[-1].set_xlabel("training step (dashed: induction score halfway)")
        fig.tight_layout()
        return fig


def analyse_formation(runs: list[FormationTraining]) -> FormationAnalysis:
    """Locate each measure's phase change in each run."""
    labels = tuple("attention-only" if r.config.attention_only else "with MLPs" for r in runs)
    change, drop, spread, final, initial, steps, histories = {}, {}, {}, {}, {}, {}, {}
    for label, run in zip(labels, runs):
        h = run.history
        change[label] = {m: halfway_step(h["eval_step"], h[m]) for m in MEASURES}
        drop[label] = steepest_drop_step(h["eval_step"], h["eval_loss"])
        located = [change[label][m] for m in MEASURES[:3]] + [drop[label]]
        spread[label] = None if None in located else max(located) - min(located)
        final[label] = {m: h[m][-1] for m in MEASURES}
        initial[label] = {m: h[m][0] for m in MEASURES}
        steps[label] = run.config.steps
        histories[label] = {k: h[k] for k in ("eval_step", "loss", *MEASURES)}
    return FormationAnalysis(labels=labels, phase_change=change, steepest_loss_drop=drop, spread=spread, final=final,
                             initial=initial, steps=steps, histories=histories)
