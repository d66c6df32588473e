"""A toy model whose circuit is known: an attention-only transformer trained on induction.

Each training sequence is ``[BOS]`` then random tokens, in which a span of ``span``
tokens is copied to a random later offset. After the first token of the copy, every
next token is predictable only by induction: find the earlier occurrence of the current
token and predict what came after it. A two-layer attention-only model learns this with
two kinds of head (Olsson et al. 2022; Elhage et al. 2021):

* a **previous-token head** in layer 0 writes "the token before me was A" at each position;
* **induction heads** in layer 1 whose *keys* read that (K-composition) and whose
  query is the current token A, so they attend to the token after the earlier A and
  copy it to the output.

::

    from mechscope.toys import InductionConfig, train_induction_model, verify_induction

    trained = train_induction_model(InductionConfig())     # 1000 steps, about 15 s on one core
    check = verify_induction(trained.model)
    check.verified, check.previous_token_head, check.circuit.induction_heads
    # True, (0, h), ((1, h1), (1, h2), ...)

The offset may be as small as 2 (the copy then overlaps its original and repeats with
that period). With copies that never overlap, the offset is at least ``span``, and any
layer-0 head that looks back ``k < span`` positions serves as well as a previous-token
head; trained on such data the toy reliably learned heads looking back about ``span``
positions instead of one. Only ``k = 1`` works at every offset.

The model is an unmodified ``transformers`` GPT-2 whose MLP weights and biases are zero
and frozen (so each MLP adds exactly zero), wrapped as a :class:`~mechscope.HookedModel`
with a word-level tokenizer over the integer tokens (``"[BOS] 5 17 3"``).
:mod:`mechscope.toys.induction_check` verifies the mechanism without any
circuit-discovery method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from torch import Tensor
from tqdm.auto import tqdm
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result
from mechscope.toys.training import torch_threads

BOS_ID = 0
"""Id of the ``[BOS]`` token that starts every sequence; ids 1.. are the random tokens."""
LOSS_TOKENS = ("induction", "all")
"""What :attr:`InductionConfig.loss_tokens` may be."""
_D_MLP = 4
"""Width of the (zeroed) MLPs: they compute exactly zero, so keep them cheap."""


# ------------------------------------------------------------------------- data
@dataclass(frozen=True)
class InductionBatch:
    """Random sequences, each with one span copied to a later offset."""

    ids: Int[Tensor, "batch pos"]
    """Token ids: ``BOS_ID`` at position 0, random tokens in ``1..d_vocab-1`` after."""
    induction_mask: Bool[Tensor, "batch pos"]
    """True at the tokens predictable by induction: the copy, after its first token."""
    source_start: Int[Tensor, "batch"]
    """First position of the original span."""
    copy_start: Int[Tensor, "batch"]
    """First position of the copy (at least ``source_start + 2``; the copy overlaps the
    original when closer than ``span``)."""
    span: int
    """Tokens in the copied span."""


def induction_batch(n: int, seq_len: int, d_vocab: int, *, span: int, seed: int) -> InductionBatch:
    """``n`` sequences of ``seq_len`` tokens, each copying a ``span``-token span once.

    The offset ``b - a`` between the original (at ``a >= 1``) and the copy (at ``b``) is
    uniform in ``2 .. seq_len - span - 1``, then ``a`` uniform where the copy fits: no
    head can find the earlier occurrence by position alone. Offsets below ``span``
    overlap, and copying token by token makes the copy periodic, so ``ids[b + i] ==
    ids[a + i]`` for every ``i < span`` either way. Tokens are uniform over
    ``1 .. d_vocab - 1`` (an unrelated earlier occurrence is possible, as in text).
    Seeded with its own generator.
    """
    if n < 1:
        raise InputError(f"n must be at least 1; received {n}")
    if span < 2:
        raise InputError(f"span must be at least 2 (a copy needs a token after its first); received {span}")
    if seq_len < span + 3:
        raise InputError(
            f"seq_len must be at least span + 3 = {span + 3} (BOS, an offset of 2, the copy); received {seq_len}"
        )
    if d_vocab < 3:
        raise InputError(f"d_vocab must be at least 3 (BOS and two random tokens); received {d_vocab}")
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, d_vocab, (n, seq_len), generator=generator)
    ids[:, 0] = BOS_ID
    offset = 2 + _uniform_below(seq_len - span - 2, generator, n)  # 2 .. seq_len - span - 1
    a = 1 + _uniform_below(seq_len - span - offset, generator, n)  # 1 .. seq_len - span - offset
    b = a + offset
    rows = torch.arange(n)
    for i in range(span):  # one token at a time: an overlapping copy repeats with period b - a
        ids[rows, b + i] = ids[rows, a + i]
    positions = torch.arange(seq_len)
    mask = (positions > b.unsqueeze(1)) & (positions < (b + span).unsqueeze(1))
    return InductionBatch(ids=ids, induction_mask=mask, source_start=a, copy_start=b, span=span)


def _uniform_below(high: Tensor | int, generator: torch.Generator, n: int) -> Int[Tensor, "n"]:
    """One integer uniform in ``0 .. high-1`` per row (``high`` may differ per row)."""
    return (torch.rand(n, generator=generator) * high).long()


# ------------------------------------------------------------------------ model
@dataclass(frozen=True, kw_only=True)
class InductionConfig:
    """The toy model's shape, its data and its training; the defaults form induction heads."""

    d_vocab: int = 64
    """Vocabulary size, ``[BOS]`` included."""
    seq_len: int = 48
    """Tokens per training sequence (also the model's context)."""
    span: int = 12
    """Tokens in each copied span."""
    n_layers: int = 2
    """Attention-only blocks (:func:`verify_induction` needs two or more)."""
    d_model: int = 64
    """Residual stream width."""
    n_heads: int = 4
    """Heads per layer (``d_head = d_model / n_heads``)."""
    batch_size: int = 32
    """Sequences per step."""
    steps: int = 1000
    """Adam steps (induction heads form after about 300-500 of them)."""
    lr: float = 3e-3
    """Adam's learning rate (constant)."""
    init_std: float = 0.1
    """Standard deviation of the initial weights (GPT-2's ``initializer_range``; its
    default 0.02 takes about 1.5 times as many steps to form induction heads)."""
    loss_tokens: str = "induction"
    """Train on the cross-entropy of the ``induction`` tokens only (the only ones there is
    anything to learn on), or of ``all`` tokens (several times slower: the random tokens'
    gradients are noise)."""
    seed: int = 0
    """Seeds the initial weights and the training data."""
    threads: int | None = 1
    """torch intra-op threads while training; None: every CPU core this process may use.
    One by default: on 2 idle cores two threads were only 20% faster (11.5 vs 14 ms a
    step), and with another process busy on one core twenty times slower (0.46 s)."""

    def __post_init__(self) -> None:
        for field in ("d_vocab", "seq_len", "span", "n_layers", "d_model", "n_heads", "batch_size", "steps"):
            if getattr(self, field) < 1:
                raise InputError(f"InductionConfig.{field} must be at least 1; received {getattr(self, field)}")
        if self.d_model % self.n_heads:
            raise InputError(
                f"InductionConfig.d_model must be a multiple of n_heads={self.n_heads}; received {self.d_model}"
            )
        if not 2 <= self.span <= self.seq_len - 3:
            raise InputError(
                f"InductionConfig.span must be in 2 .. seq_len - 3 = {self.seq_len - 3}; received {self.span}"
            )
        if self.d_vocab < 3:
            raise InputError(f"InductionConfig.d_vocab must be at least 3; received {self.d_vocab}")
        if not self.lr > 0:
            raise InputError(f"InductionConfig.lr must be positive; received {self.lr}")
        if self.loss_tokens not in LOSS_TOKENS:
            raise InputError(
                f"InductionConfig.loss_tokens must be one of {', '.join(LOSS_TOKENS)}; received {self.loss_tokens!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise InputError(f"InductionConfig.threads must be at least 1 or None; received {self.threads}")


def integer_tokenizer(d_vocab: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: ``"[BOS]"`` is id 0, ``"1"`` .. ``"{d_vocab-1}"`` the others.

    Text is whitespace-separated integers; the BOS token is added in front, as in training.
    """
    vocab = {"[BOS]": BOS_ID, **{str(i): i for i in range(1, d_vocab)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[BOS]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", BOS_ID)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="[BOS]", unk_token="[BOS]")


def attention_only_model(config: InductionConfig) -> HookedModel:
    """A freshly initialised (seeded) GPT-2 whose MLPs are zero and frozen, wrapped.

    ``ln_2`` (which only feeds the MLP) is frozen too; everything else trains.
    """
    hf_config = GPT2Config(
        vocab_size=config.d_vocab, n_positions=config.seq_len, n_embd=config.d_model, n_layer=config.n_layers,
        n_head=config.n_heads, n_inner=_D_MLP, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=BOS_ID, eos_token_id=BOS_ID, tie_word_embeddings=False, initializer_range=config.init_std,
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
        torch.manual_seed(config.seed)
        hf_model = GPT2LMHeadModel(hf_config)
    with torch.no_grad():
        for block in hf_model.transformer.h:
            for param in block.mlp.parameters():
                param.zero_()
                param.requires_grad_(False)
            for param in block.ln_2.parameters():
                param.requires_grad_(False)
    return HookedModel(hf_model.eval(), integer_tokenizer(config.d_vocab), name="induction-toy")


# --------------------------------------------------------------------- training
@dataclass(frozen=True)
class InductionTraining(Result):
    """A trained toy model and how training went."""

    model: HookedModel
    """The trained model (eval mode; the MLPs still zero and frozen)."""
    loss: Float[Tensor, "step"]
    """Mean next-token cross-entropy over every position, per step (nats). Under the
    default ``loss_tokens="induction"`` nothing trains the predictions of the random
    tokens, and this ends above chance (6.6 nats for the default config, chance 4.14)."""
    induction_loss: Float[Tensor, "step"]
    """Cross-entropy on the induction-predictable tokens only, per step (nats; chance is
    ``ln(d_vocab - 1)``). The default ``loss_tokens="induction"`` trains on this one."""
    config: InductionConfig
    """The configuration trained."""
    seconds: float
    """Wall time of training."""

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["model"] = repr(self.model)
        return out


def next_token_losses(
    logits: Float[Tensor, "batch pos d_vocab"], batch: InductionBatch
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """(mean loss over every predicted token, mean loss over the induction tokens)."""
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), batch.ids[:, 1:].flatten().to(logits.device), reduction="none"
    )
    mask = batch.induction_mask[:, 1:].flatten().to(logits.device)
    return per_token.mean(), per_token[mask].mean()


def train_induction_model(config: InductionConfig = InductionConfig(), *, progress: bool = True) -> InductionTraining:
    """Train a fresh attention-only model on :func:`induction_batch` data with Adam.

    Deterministic for a given config and thread count: the weights come from
    ``config.seed`` and batch ``i`` from ``induction_batch(..., seed=config.seed * 1_000_003 + i)``.
    """
    started = time.perf_counter()
    model = attention_only_model(config)
    params = [p for p in model.hf_model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    losses, induction_losses = [], []
    bar = tqdm(range(config.steps), desc="train induction toy", unit="step", disable=not progress, dynamic_ncols=True)
    with torch_threads(config.threads):
        model.hf_model.train()
        try:
            for step in bar:
                batch = induction_batch(config.batch_size, config.seq_len, config.d_vocab, span=config.span,
                                        seed=config.seed * 1_000_003 + step)
                logits = model.hf_model(input_ids=batch.ids, use_cache=False).logits
                loss, induction_loss = next_token_losses(logits, batch)
                optimizer.zero_grad(set_to_none=True)
                (induction_loss if config.loss_tokens == "induction" else loss).backward()
                optimizer.step()
                losses.append(loss.item())
                induction_losses.append(induction_loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}", induction=f"{induction_losses[-1]:.3f}", refresh=False)
        finally:
            bar.close()
            model.hf_model.eval()
    return InductionTraining(model=model, loss=torch.tensor(losses), induction_loss=torch.tensor(induction_losses),
                             config=config, seconds=time.perf_counter() - started)
