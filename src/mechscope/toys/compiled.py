"""A toy model whose induction circuit is known by construction: its weights are set by hand.

Ground truth for circuit discovery, with no training: an unmodified ``transformers`` GPT-2
(2 layers, 4 heads, MLPs exactly zero) over the integer tokens of
:mod:`mechscope.toys.induction` (``"[BOS] 5 17 3"``)::

    from mechscope.toys import compiled_induction_model, compiled_induction_task

    compiled = compiled_induction_model()               # d_vocab=32, n_ctx=32
    task = compiled_induction_task(compiled.model, n=64)  # "... A B ... A" -> B; corrupt B -> B'
    sorted(str(e) for e in compiled.known_edges)        # ['a0.0<q> ← input', ..., 'logits ← a1.2']

**Residual stream** (one-hot features, each in its own dims; the rest pads ``d_model``
to ``4 * max(d_vocab, n_ctx)`` at least, so every head's ``d_head`` holds a one-hot map):
``tok`` (the token), ``pos`` (the position), ``prev`` (the previous token, written by
0.0), ``out`` (the token to predict, written by 1.2, the only dims ``W_U`` reads),
``junk0``/``junk1`` (what the distractors write) and ``neg``, one dim that every
embedding row and every head output writes minus its sum into, so each write has mean 0.

**Circuit.** 0.0 is a previous-token head: its query reads ``pos`` at i, its key ``pos``
at j, with score ``sharpness`` (30) where j = i - 1 (position 0 attends to itself), and it copies ``tok``
into ``prev``. 1.2 is the induction head: query ``tok``, key ``prev`` (K-composition with
0.0), the same score on a match; it copies ``tok`` into ``out`` with weight 10, and ``W_U`` maps
``out`` to those logits. On a prompt ``... A B ... A`` the last position's logit of B is
10 and every other logit is 0 (to 1e-7).

**Distractors** have non-zero weights and real activations but write only into junk,
which neither ``W_U`` nor any circuit head reads: 0.1 attends uniformly, 0.2 to earlier
copies of its own token, 0.3 to BOS; 1.0 attends by what 0.1-0.3 wrote and reads
``prev``; 1.1 is a decoy induction head (1.2's key and query at score 3, not 30); 1.3
attends uniformly and reads ``tok``, ``prev`` and ``junk0``.

**LayerNorm** cannot be removed from GPT-2, so it is made linear: its ``eps`` is 1e12,
which no ``var(x)`` here (at most about 2) changes in float32, so each norm divides by
exactly ``sqrt(eps)``; its weight ``sqrt(eps)`` undoes that and its bias is 0. What remains is the
mean subtraction, the identity on mean-0 writes. The scale hooks see the constant 1e6.
So a distractor's only route to the logits, the norm's scale, is closed: zeroing all six
changes the logits by float rounding (at most 1e-7 measured), not by an approximation.

**Edges** (:attr:`CompiledInduction.known_edges`), all in ``CircuitGraph.of(model)``:
``a0.0<q> ← input`` and ``a0.kv0<k> ← input`` (positions), ``a0.kv0<v> ← input``
(tokens), ``a1.kv2<k> ← a0.0``, ``a1.2<q> ← input``, ``a1.kv2<v> ← input``, ``logits ← a1.2``.
Zero- or mean-ablating any one of them cuts the logit difference from 10 to under 1,
and every other edge ablated together leaves it at 10 (both measured). Nothing else is
read: ``logits ← input`` is absent (``W_U`` reads only ``out``, which only 1.2 writes),
as are ``a1.2<q>``/``a1.kv2<v> ← a0.0`` (they read ``tok``, which 0.0 does not write).

Which of them a *corruption* can reveal depends on what it changes
(:meth:`CompiledInduction.exercised_edges`): no same-length prompt changes positions, so
resample ablation never needs the two position edges (zero ablation does; mean ablation
over positions does). ``value`` (B -> B' after the earlier A) changes only
``a1.kv2<v> ← input``; ``query`` (the last A -> C, which appears earlier before D)
only ``a1.2<q> ← input``; ``key`` (swap the earlier A and C) only ``a0.kv0<v> ← input``
and ``a1.kv2<k> ← a0.0``. Each also needs ``logits ← a1.2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import torch
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel

from mechscope.circuits.graph import CircuitGraph, Edge
from mechscope.errors import InputError
from mechscope.hooks.hooked_model import HookedModel
from mechscope.hooks.tokens import TokenBatch
from mechscope.tasks.task import Task
from mechscope.toys.induction import BOS_ID, integer_tokenizer

CORRUPTIONS = ("value", "key", "query")
"""What :func:`compiled_induction_task` may corrupt (see the module docstring)."""
N_HEADS = 4
"""Heads per layer of the compiled model (it has two layers)."""
_JUNK = 8
"""Dims of each junk subspace."""
_DECOY = 3.0
"""Attention score of the decoy induction head 1.1: induction-like, far from saturated."""
_LOGIT = 10.0
"""Logit the induction head gives the token it copies."""
_LN_EPS = 1e12
"""LayerNorm epsilon: dwarfs every variance, so each norm is linear (see the module docstring)."""


@dataclass(frozen=True)
class CompiledLayout:
    """Where each feature of the residual stream lives."""

    tok: slice
    """One-hot of the token (``wte``)."""
    pos: slice
    """One-hot of the position (``wpe``)."""
    prev: slice
    """One-hot of the previous token, written by 0.0."""
    out: slice
    """The token to predict, written by 1.2; all that ``W_U`` reads."""
    junk0: slice
    """Written by the layer-0 distractors, read only by 1.0 and 1.3."""
    junk1: slice
    """Written by the layer-1 distractors, read by nothing."""
    neg: int
    """The dim that makes every write mean-0."""
    d_model: int
    """Residual width: the dims above, padded so ``d_head`` fits ``d_vocab`` and ``n_ctx``."""


def compiled_layout(d_vocab: int, n_ctx: int) -> CompiledLayout:
    """The residual layout for ``d_vocab`` tokens and ``n_ctx`` positions."""
    ends = list(accumulate([d_vocab, n_ctx, d_vocab, d_vocab, _JUNK, _JUNK], initial=0))
    tok, pos, prev, out, junk0, junk1 = (slice(a, b) for a, b in zip(ends, ends[1:]))
    d_model = N_HEADS * max(math.ceil((ends[-1] + 1) / N_HEADS), d_vocab, n_ctx)
    return CompiledLayout(tok, pos, prev, out, junk0, junk1, neg=ends[-1], d_model=d_model)


@dataclass(frozen=True)
class CompiledInduction:
    """A hand-compiled induction model and its circuit."""

    model: HookedModel
    """The GPT-2, wrapped (eval mode)."""
    previous_token_head: tuple[int, int]
    """(layer, head) of the previous-token head: (0, 0)."""
    induction_head: tuple[int, int]
    """(layer, head) of the induction head: (1, 2)."""
    known_edges: frozenset[Edge]
    """The edges of the designed circuit in ``CircuitGraph.of(model)``."""
    layout: CompiledLayout
    """The residual-stream layout the weights implement."""

    @property
    def distractor_heads(self) -> tuple[tuple[int, int], ...]:
        """Every head outside the circuit."""
        circuit = (self.previous_token_head, self.induction_head)
        return tuple((layer, h) for layer in range(2) for h in range(N_HEADS) if (layer, h) not in circuit)

    def exercised_edges(self, corruption: str) -> frozenset[Edge]:
        """The known edges whose clean and ``corruption`` values differ: all that resample
        ablation with :func:`compiled_induction_task` of that corruption can find."""
        h = self.induction_head[1]
        names = {"value": [f"a1.kv{h}<v> ← input"], "query": [f"a1.{h}<q> ← input"],
                 "key": ["a0.kv0<v> ← input", f"a1.kv{h}<k> ← a0.0"]}
        if corruption not in names:
            raise InputError(f"corruption must be one of {', '.join(CORRUPTIONS)}; received {corruption!r}")
        graph = CircuitGraph.of(self.model)
        return frozenset(graph.edge(name) for name in [*names[corruption], f"logits ← a1.{h}"])


def compiled_induction_model(d_vocab: int = 32, n_ctx: int = 32, seed: int = 0, *,
                             sharpness: float = 30.0) -> CompiledInduction:
    """Build the model; ``seed`` draws only the distractors' random maps.

    ``sharpness`` is the attention score of a designed match (0.0's, 1.2's, 0.2's, 0.3's):
    every other key gets ``e^-sharpness`` of its weight. A saturated softmax has almost no
    gradient, so at 30 EAP scores the key and query edges about 0 (measured); at 4 EAP
    finds them, but attention is no longer one-hot: the logit difference is about 4, not
    10, and edges outside ``exercised_edges`` carry a little (0.004) of a corruption.
    """
    if not sharpness > 0:
        raise InputError(f"sharpness must be positive; received {sharpness}")
    if d_vocab < 7:
        raise InputError(f"d_vocab must be at least 7 (BOS, A, B, C, D, B' and a filler); received {d_vocab}")
    if n_ctx < 8:
        raise InputError(f"n_ctx must be at least 8 (BOS, two separate pairs, the last token); received {n_ctx}")
    layout = compiled_layout(d_vocab, n_ctx)
    config = GPT2Config(
        vocab_size=d_vocab, n_positions=n_ctx, n_embd=layout.d_model, n_layer=2, n_head=N_HEADS, n_inner=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=_LN_EPS, bos_token_id=BOS_ID,
        eos_token_id=BOS_ID, tie_word_embeddings=False, attn_implementation="sdpa",
    )
    with torch.random.fork_rng(devices=[]):  # the random initialisation is overwritten; spare the caller's RNG
        hf_model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for param in hf_model.parameters():
            param.zero_()
        _set_weights(hf_model, layout, d_vocab, n_ctx, sharpness, torch.Generator().manual_seed(seed))
    model = HookedModel(hf_model, integer_tokenizer(d_vocab), name="compiled-induction-toy")
    h = 2
    names = ["a0.0<q> ← input", "a0.kv0<k> ← input", "a0.kv0<v> ← input", f"a1.kv{h}<k> ← a0.0",
             f"a1.{h}<q> ← input", f"a1.kv{h}<v> ← input", f"logits ← a1.{h}"]
    graph = CircuitGraph.of(model)
    return CompiledInduction(model=model, previous_token_head=(0, 0), induction_head=(1, h),
                             known_edges=frozenset(graph.edge(name) for name in names), layout=layout)


def _set_weights(hf_model: GPT2LMHeadModel, s: CompiledLayout, d_vocab: int, n_ctx: int, sharpness: float,
                 gen: torch.Generator) -> None:
    d_head = s.d_model // N_HEADS
    sharp, tokens, positions = sharpness * math.sqrt(d_head), torch.arange(d_vocab), torch.arange(n_ctx)

    def rand(rows: int) -> Tensor:  # a random read into the first _JUNK dims of a head
        return torch.randn(rows, _JUNK, generator=gen) / math.sqrt(rows)

    def rows(*spaces: slice) -> Tensor:  # the dims of several subspaces
        return torch.cat([torch.arange(space.start, space.stop) for space in spaces])

    transformer = hf_model.transformer
    transformer.wte.weight[tokens, s.tok.start + tokens] = 1.0
    transformer.wpe.weight[positions, s.pos.start + positions] = 1.0
    transformer.wte.weight[:, s.neg] = transformer.wpe.weight[:, s.neg] = -1.0
    hf_model.lm_head.weight[tokens, s.out.start + tokens] = 1.0
    for norm in (*(b.ln_1 for b in transformer.h), *(b.ln_2 for b in transformer.h), transformer.ln_f):
        norm.weight.fill_(math.sqrt(_LN_EPS))

    layer0 = [_blank(s.d_model, d_head) for _ in range(N_HEADS)]
    prev_token = layer0[0]  # query at i matches the key at i - 1
    prev_token["q"][s.pos.start + positions[1:], positions[:-1]] = sharp
    prev_token["k"][s.pos.start + positions, positions] = 1.0
    prev_token["v"][s.tok.start + tokens, tokens] = 1.0
    prev_token["o"][tokens, s.prev.start + tokens] = 1.0
    layer0[1]["v"][s.tok, :_JUNK] = rand(d_vocab)  # uniform attention
    layer0[2]["q"][s.tok.start + tokens, tokens] = sharp  # attends to copies of its own token
    layer0[2]["k"][s.tok.start + tokens, tokens] = 1.0
    layer0[2]["v"][s.pos, :_JUNK] = rand(n_ctx)
    layer0[3]["bq"][0] = sharp  # attends to position 0
    layer0[3]["k"][s.pos.start, 0] = 1.0
    layer0[3]["v"][rows(s.tok, s.pos), :_JUNK] = rand(d_vocab + n_ctx)

    layer1 = [_blank(s.d_model, d_head) for _ in range(N_HEADS)]
    layer1[0]["q"][s.junk0, :_JUNK] = rand(_JUNK) * math.sqrt(d_head)  # attends by layer 0's junk
    layer1[0]["k"][s.junk0, :_JUNK] = rand(_JUNK)
    layer1[0]["v"][s.prev, :_JUNK] = rand(d_vocab)
    layer1[1]["q"][s.tok.start + tokens, tokens] = _DECOY * math.sqrt(d_head)  # decoy induction head
    layer1[1]["k"][s.prev.start + tokens, tokens] = 1.0
    layer1[1]["v"][s.tok, :_JUNK] = rand(d_vocab)
    induction = layer1[2]
    induction["q"][s.tok.start + tokens, tokens] = sharp
    induction["k"][s.prev.start + tokens, tokens] = 1.0
    induction["v"][s.tok.start + tokens, tokens] = 1.0
    induction["o"][tokens, s.out.start + tokens] = _LOGIT
    layer1[3]["v"][rows(s.tok, s.prev, s.junk0), :_JUNK] = rand(2 * d_vocab + _JUNK)  # uniform attention
    for layer, heads, junk in ((0, layer0, s.junk0), (1, layer1, s.junk1)):
        for head in (1, 2, 3) if layer == 0 else (0, 1, 3):
            heads[head]["o"][torch.arange(_JUNK), junk.start + torch.arange(_JUNK)] = 1.0
        _install(transformer.h[layer], heads, s.neg)


def _blank(d_model: int, d_head: int) -> dict[str, Tensor]:
    """Zero weights of one head: ``x @ q + bq``, ``x @ k``, ``x @ v`` and ``z @ o``."""
    return {"q": torch.zeros(d_model, d_head), "k": torch.zeros(d_model, d_head), "v": torch.zeros(d_model, d_head),
            "bq": torch.zeros(d_head), "o": torch.zeros(d_head, d_model)}


def _install(block, heads: list[dict[str, Tensor]], neg: int) -> None:
    """Write per-head weights into GPT-2's fused ``c_attn`` and ``c_proj``; each head's
    output gets minus its sum in ``neg``, so it has mean 0 and LayerNorm's centring leaves it."""
    d_model = block.attn.c_attn.weight.shape[0]
    d_head = d_model // len(heads)
    for h, weights in enumerate(heads):
        cols = slice(h * d_head, (h + 1) * d_head)
        for i, which in enumerate("qkv"):
            block.attn.c_attn.weight[:, i * d_model + cols.start : i * d_model + cols.stop] = weights[which]
        block.attn.c_attn.bias[cols] = weights["bq"]
        out = weights["o"].clone()
        out[:, neg] = -out.sum(1)
        block.attn.c_proj.weight[cols] = out


# ------------------------------------------------------------------------- task
def compiled_induction_task(model: HookedModel, *, n: int = 64, seed: int = 0, corruption: str = "value") -> Task:
    """``n`` prompts of ``n_ctx`` tokens: BOS, fillers, the pairs ``A B`` and ``C D`` at
    random places, and the last token ``A``; the answer is B (induction is the only way to
    it). ``A, B, C, D, B'`` are distinct and no filler is one of them. The clean prompts
    depend only on ``seed``, not on ``corruption``, which picks the corrupted prompts and
    the wrong answers:

    * ``value``: B -> B' after the earlier A; wrong B'.
    * ``query``: the last A -> C; wrong D.
    * ``key``: the earlier A and C swap places (``C B ... A D ... A``); wrong D.
    """
    if corruption not in CORRUPTIONS:
        raise InputError(f"corruption must be one of {', '.join(CORRUPTIONS)}; received {corruption!r}")
    if n < 1:
        raise InputError(f"n must be at least 1; received {n}")
    d_vocab, n_ctx = model.cfg.d_vocab, model.cfg.n_ctx
    gen = torch.Generator().manual_seed(seed)
    clean, corrupt, answers, wrong = [], [], [], []
    for _ in range(n):
        a, b, c, d, b2 = (1 + torch.randperm(d_vocab - 1, generator=gen)[:5]).tolist()
        fillers = torch.tensor(sorted(set(range(1, d_vocab)) - {a, b, c, d, b2}))
        ids = fillers[torch.randint(len(fillers), (n_ctx,), generator=gen)]
        starts = (1 + torch.randperm(n_ctx - 4, generator=gen)).tolist()  # pairs end before the last 2 slots
        p = starts[0]
        q = next(start for start in starts[1:] if abs(start - p) >= 2)
        ids[0], ids[p], ids[p + 1], ids[q], ids[q + 1], ids[-1] = BOS_ID, a, b, c, d, a
        bad = ids.clone()
        if corruption == "value":
            bad[p + 1] = b2
        elif corruption == "query":
            bad[-1] = c
        else:
            bad[p], bad[q] = c, a
        clean.append(ids)
        corrupt.append(bad)
        answers.append(b)
        wrong.append(b2 if corruption == "value" else d)
    clean_ids, corrupt_ids = torch.stack(clean), torch.stack(corrupt)
    return Task(name=f"compiled-induction-{corruption}",
                clean=TokenBatch(clean_ids, torch.ones_like(clean_ids)),
                corrupt=TokenBatch(corrupt_ids, torch.ones_like(corrupt_ids)),
                answers=torch.tensor(answers), wrong=torch.tensor(wrong), metric="logit_diff",
                prompts=tuple(model.to_string(clean_ids)), corrupt_prompts=tuple(model.to_string(corrupt_ids)))
