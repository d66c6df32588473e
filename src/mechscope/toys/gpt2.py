"""The toys' transformer: an unmodified Hugging Face GPT-2 built from a small config.

Every trained toy (grokking, Othello-GPT, induction-head formation) is a
``GPT2LMHeadModel`` with its own vocabulary, wrapped as a :class:`~mechscope.HookedModel`,
so mechscope's hooks, patching and probes run on it as on any bundled model::

    hf = toy_gpt2(ToyShape(d_vocab=114, n_ctx=3, d_model=128, n_layers=1, n_heads=4,
                           d_mlp=512, activation="relu", layer_norm=False), seed=0)
    model = HookedModel(hf, integer_tokenizer(114), name="grokking-toy")

**No LayerNorm.** GPT-2 always has LayerNorms; ``layer_norm=False`` makes each one
linear and frees no parameter: ``eps`` is 1e12, which no variance a toy reaches changes
in float32 (1e12's float32 spacing is 65,536), so every norm divides by exactly
``sqrt(eps)``, and its weight ``sqrt(eps)`` (frozen, bias 0, frozen) undoes that. What is
left is the mean subtraction, a fixed projection off the all-ones direction: the model
is a LayerNorm-free transformer whose blocks read ``d_model - 1`` of its dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from mechscope.errors import InputError

LINEAR_LN_EPS = 1e12
"""LayerNorm epsilon of a toy without LayerNorm (see the module docstring)."""


@dataclass(frozen=True, kw_only=True)
class ToyShape:
    """The architecture of a toy GPT-2."""

    d_vocab: int
    """Vocabulary size."""
    n_ctx: int
    """Context length (learned positions)."""
    d_model: int
    """Residual stream width."""
    n_layers: int
    """Transformer blocks."""
    n_heads: int
    """Attention heads per block (``d_head = d_model / n_heads``)."""
    d_mlp: int
    """MLP hidden width."""
    activation: str = "gelu_new"
    """The MLP's activation (a ``transformers`` activation name: ``relu``, ``gelu_new`` ...)."""
    layer_norm: bool = True
    """False: every LayerNorm made linear and frozen (see the module docstring)."""
    init_std: float = 0.02
    """Standard deviation of the initial weights (GPT-2's ``initializer_range``)."""

    def __post_init__(self) -> None:
        for field in ("d_vocab", "n_ctx", "d_model", "n_layers", "n_heads", "d_mlp"):
            if getattr(self, field) < 1:
                raise InputError(f"ToyShape.{field} must be at least 1; received {getattr(self, field)}")
        if self.d_model % self.n_heads:
            raise InputError(f"ToyShape.d_model must be a multiple of n_heads={self.n_heads}; received {self.d_model}")


def toy_gpt2(shape: ToyShape, *, seed: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 of ``shape`` (seeded without touching the caller's RNG), eval mode."""
    config = GPT2Config(
        vocab_size=shape.d_vocab, n_positions=shape.n_ctx, n_embd=shape.d_model, n_layer=shape.n_layers,
        n_head=shape.n_heads, n_inner=shape.d_mlp, activation_function=shape.activation, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False, initializer_range=shape.init_std,
        layer_norm_epsilon=1e-5 if shape.layer_norm else LINEAR_LN_EPS, bos_token_id=0, eos_token_id=0,
        attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    if not shape.layer_norm:
        norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
        with torch.no_grad():
            for norm in norms:
                norm.weight.fill_(math.sqrt(LINEAR_LN_EPS))
                norm.bias.zero_()
                norm.weight.requires_grad_(False)
                norm.bias.requires_grad_(False)
    return model.eval()


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters that train (a linear LayerNorm's are frozen)."""
    return [p for p in model.parameters() if p.requires_grad]


def word_tokenizer(words: list[str], *, bos: str | None = None, unk: str | None = None) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: ``words[i]`` is id ``i``; text is whitespace-separated words.

    With ``bos`` (one of ``words``) it is put in front of every text, as in training;
    unknown words become ``unk`` (default: ``bos``, else the first word).
    """
    if len(set(words)) != len(words) or any(not w or w != w.strip() or " " in w for w in words):
        raise InputError("words must be distinct, non-empty and free of whitespace")
    if bos is not None and bos not in words:
        raise InputError(f"bos {bos!r} must be one of the words")
    unk = unk or bos or words[0]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, words.index(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, unk_token=unk)
