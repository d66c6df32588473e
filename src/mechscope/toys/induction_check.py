"""Check that a trained induction toy really runs the textbook circuit, by three
independent lines of evidence and no circuit-discovery method:

1. **Attention patterns** on fresh induction data: the previous-token head in layer 0
   attends from each position to the one before it; the induction heads in layer 1
   attend from the current token to the token after its earlier occurrence.
2. **Weights**: the induction heads' keys read what the previous-token head writes
   (K-composition, Elhage et al. 2021), far more than random matrices of the same
   shapes would.
3. **Causes**: mean-ablating the previous-token head, or the induction heads together,
   destroys the loss on the induction tokens; ablating any other head barely moves it.

::

    check = verify_induction(trained.model)
    check.verified                     # every criterion in check.criteria holds
    check.circuit.key_edges            # (((0, h), HeadInput(layer=1, head=h', input="k")), ...)
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError
from mechscope.patching.ablation import Ablation, ablated
from mechscope.patching.path import HeadInput
from mechscope.results import Result
from mechscope.toys.induction import InductionBatch, induction_batch, next_token_losses

Head = tuple[int, int]
"""(layer, head)."""


@dataclass(frozen=True)
class InductionCircuit:
    """The known circuit, to score circuit-discovery methods against.

    Edges, as (sender, receiver input): token embedding → previous-token head's value;
    positions → previous-token head's query and key; previous-token head → each induction
    head's **key** (the K-composition the mechanism hinges on: ``key_edges``); token
    embedding → induction heads' queries (the current token) and values (the token to
    copy); induction heads → logits.

    Every layer-1 head of the default toy becomes an induction head (there is nothing
    else for them to do), so the circuit has one previous-token head and several
    redundant induction heads; each alone matters little, together everything.
    """

    previous_token_head: Head
    """The layer-0 head that moves each token one position forward."""
    induction_heads: tuple[Head, ...]
    """The layer-1 heads that attend to the token after the earlier occurrence (best first)."""

    @property
    def induction_head(self) -> Head:
        """The most induction-like head."""
        return self.induction_heads[0]

    @property
    def heads(self) -> tuple[Head, ...]:
        return (self.previous_token_head, *self.induction_heads)

    @property
    def key_edges(self) -> tuple[tuple[Head, HeadInput], ...]:
        """The edges that make it induction: previous-token head → each induction head's key input."""
        return tuple((self.previous_token_head, HeadInput(layer=layer, head=head, input="k"))
                     for layer, head in self.induction_heads)


@dataclass(frozen=True, kw_only=True)
class Criteria:
    """What ``verified`` requires; every bound is strict."""

    min_previous_token_score: float = 0.5
    """The previous-token head's mean attention to the previous position exceeds this."""
    min_induction_score: float = 0.5
    """A layer-1 head counts as an induction head when its prefix-matching score exceeds
    this; there must be at least one."""
    min_k_composition_ratio: float = 1.5
    """Into every induction head, the previous-token head's K-composition exceeds this many
    times the random baseline's mean, ..."""
    min_k_composition_sigmas: float = 10.0
    """... the baseline's mean plus this many of its standard deviations, and every other
    layer-0 head's."""
    max_clean_loss: float = 1.0
    """The clean loss on induction tokens (nats) is below this (chance: ln(d_vocab - 1))."""
    min_ablation_increase: float = 1.0
    """Ablating the previous-token head, and ablating the induction heads together, each
    raise that loss by more than this (nats), ..."""
    min_ablation_ratio: float = 3.0
    """... and by more than this many times the largest rise from ablating one head
    outside the circuit."""


@dataclass(frozen=True)
class InductionCheck(Result):
    """Evidence that a model runs the induction circuit, and the verdict."""

    previous_token: Float[Tensor, "layer head"]
    """Mean attention from each position (after BOS) to the position before it."""
    induction: Float[Tensor, "layer head"]
    """Prefix matching: mean attention from a copied token to the token after its original."""
    k_composition: Float[Tensor, "head0 head1"]
    """K-composition of layer-0 head (row) into layer-1 head (column); see :func:`k_composition_scores`."""
    k_composition_baseline: tuple[float, float]
    """(mean, standard deviation) of the same score between random matrices of the same shapes."""
    clean_loss: float
    """Cross-entropy on the induction tokens, nothing ablated (nats)."""
    ablated_loss: Float[Tensor, "layer head"]
    """The same with each head's output (``hook_z``) mean-ablated over reference data, one at a time."""
    induction_heads_ablated_loss: float
    """The same with every induction head mean-ablated at once."""
    circuit: InductionCircuit
    """The identified heads: the most previous-token-like in layer 0, the induction heads in layer 1."""
    criteria: Criteria
    """The bounds applied."""
    failures: tuple[str, ...]
    """Each criterion that does not hold, said in words; empty when verified."""
    n_seqs: int
    """Fresh sequences the scores and losses average over."""
    seed: int
    """Seed of those sequences (the ablation reference uses ``seed + 1``)."""

    @property
    def verified(self) -> bool:
        """Every criterion holds."""
        return not self.failures

    @property
    def previous_token_head(self) -> Head:
        return self.circuit.previous_token_head

    @property
    def induction_head(self) -> Head:
        return self.circuit.induction_head

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["verified"] = self.verified
        return out


# ------------------------------------------------------------- attention patterns
def induction_pattern_scores(
    model, batch: InductionBatch
) -> tuple[Float[Tensor, "layer head"], Float[Tensor, "layer head"]]:
    """(previous-token score, induction score) of every head on ``batch``."""
    _, cache = model.run_with_cache(batch.ids, names="blocks.*.attn.hook_pattern")
    n_pos = batch.ids.shape[1]
    # Queries whose next token is predictable by induction, and the key they should attend to.
    seq, query = batch.induction_mask[:, 1:].nonzero(as_tuple=True)
    key = query - (batch.copy_start - batch.source_start)[seq] + 1
    previous, induction = [], []
    for layer in range(model.cfg.n_layers):
        pattern = cache["pattern", layer].float().cpu()  # batch head query_pos key_pos
        positions = torch.arange(1, n_pos)
        previous.append(pattern[:, :, positions, positions - 1].mean(dim=(0, 2)))
        induction.append(pattern[seq, :, query, key].mean(dim=0))
    return torch.stack(previous), torch.stack(induction)


# ------------------------------------------------------------------ K-composition
def k_composition_scores(model, *, sender_layer: int = 0, receiver_layer: int = 1) -> Float[Tensor, "head0 head1"]:
    """K-composition of every sender head into every receiver head's keys (Elhage et al.)::

        ||W_OV^{h0} W_QK^{h1 T}||_F / (||W_OV^{h0}||_F ||W_QK^{h1}||_F)

    with row vectors (``x @ W``), ``W_OV = W_V W_O`` and ``W_QK = W_Q W_K^T``. Layer
    norm is folded into the weights that read the residual stream, as TransformerLens'
    ``fold_ln`` and ``center_writing_weights`` do: each reading matrix becomes
    ``C diag(g) W`` (``g`` the norm's gain, ``C = I - 11^T/d`` its mean subtraction).
    The norm's division by the standard deviation is one scalar per position and cancels
    in the ratio; biases are left out (they do not compose).
    """
    with torch.no_grad():
        ov = folded_reading_weights(model, sender_layer, "V") @ model.W_O[sender_layer]  # head0 d_model d_model
        query, key = (folded_reading_weights(model, receiver_layer, which) for which in "QK")
        qk = query @ key.transpose(-1, -2)  # head1 d_model d_model
        return composition(ov.unsqueeze(1), qk.transpose(-1, -2).unsqueeze(0)).float().cpu()


def composition(left: Tensor, right: Tensor) -> Tensor:
    """``||left @ right||_F / (||left||_F ||right||_F)`` over the last two dims."""
    return torch.linalg.matrix_norm(left @ right) / (torch.linalg.matrix_norm(left) * torch.linalg.matrix_norm(right))


def folded_reading_weights(model, layer: int, which: str) -> Float[Tensor, "head d_model d_head"]:
    """``C diag(g) W_which``: what head inputs ``resid_pre / scale @ W`` give (``which``: Q, K or V)."""
    weight = {"Q": model.W_Q, "K": model.W_K, "V": model.W_V}[which][layer]
    norm = model.adapter.norm(layer, "ln1")
    gain = model.adapter.norm_weight(norm)
    d_model = gain.shape[0]
    center = torch.eye(d_model, dtype=weight.dtype, device=weight.device) - 1.0 / d_model
    return center @ (gain.unsqueeze(-1) * weight)


def random_k_composition(d_model: int, d_head: int, *, n: int = 200, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the K-composition score between Gaussian W_Q, W_K, W_V, W_O of the model's shapes."""
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> Tensor:
        return torch.randn(n, *shape, generator=generator)

    ov = draw(d_model, d_head) @ draw(d_head, d_model)
    qk = draw(d_model, d_head) @ draw(d_model, d_head).transpose(-1, -2)
    scores = composition(ov, qk.transpose(-1, -2))
    return float(scores.mean()), float(scores.std())


# ---------------------------------------------------------------------- ablation
def ablated_induction_loss(model, batch: InductionBatch, reference: InductionBatch, heads: tuple[Head, ...]) -> float:
    """Induction-token loss on ``batch`` with ``heads``' ``hook_z`` mean-ablated over ``reference``."""
    like, ref = model.to_batch(batch.ids), model.to_batch(reference.ids)
    with ExitStack() as stack, torch.no_grad():
        for layer in sorted({layer for layer, _ in heads}):
            chosen = tuple(head for head_layer, head in heads if head_layer == layer)
            spec = Ablation(points=f"blocks.{layer}.attn.hook_z", heads=chosen, method="mean")
            stack.enter_context(ablated(model, spec, like=like, reference=ref))
        return float(next_token_losses(model(like), batch)[1])


def _per_head_losses(model, batch: InductionBatch, reference: InductionBatch) -> Float[Tensor, "layer head"]:
    layers, heads = range(model.cfg.n_layers), range(model.cfg.n_heads)
    return torch.tensor([[ablated_induction_loss(model, batch, reference, ((layer, head),)) for head in heads]
                         for layer in layers])


# ---------------------------------------------------------------------- verdict
def verify_induction(
    model, *, span: int | None = None, n_seqs: int = 64, seed: int = 999_999_937, criteria: Criteria = Criteria()
) -> InductionCheck:
    """Score every head of a trained induction toy on fresh data and judge the circuit.

    Args:
        span: copied-span length of the probe data; default ``n_ctx // 4`` (the
            training default). Sequences are ``n_ctx`` long over the model's vocabulary.
        n_seqs: fresh sequences to average over.
        seed: seed of the probe data (far from the seeds training draws).
        criteria: the bounds ``verified`` requires.
    """
    if model.cfg.n_layers < 2:
        raise InputError(f"the induction circuit needs two layers; the model has {model.cfg.n_layers}")
    span = model.cfg.n_ctx // 4 if span is None else span
    batch = induction_batch(n_seqs, model.cfg.n_ctx, model.cfg.d_vocab, span=span, seed=seed)
    reference = induction_batch(n_seqs, model.cfg.n_ctx, model.cfg.d_vocab, span=span, seed=seed + 1)
    previous, induction = induction_pattern_scores(model, batch)
    order = induction[1].argsort(descending=True).tolist()
    induction_heads = [(1, h) for h in order if induction[1, h] > criteria.min_induction_score] or [(1, order[0])]
    circuit = InductionCircuit(previous_token_head=(0, int(previous[0].argmax())),
                               induction_heads=tuple(induction_heads))
    k_comp = k_composition_scores(model)
    baseline = random_k_composition(model.cfg.d_model, model.cfg.d_head)
    clean = ablated_induction_loss(model, batch, reference, ())
    per_head = _per_head_losses(model, batch, reference)
    together = ablated_induction_loss(model, batch, reference, circuit.induction_heads)
    failures = [
        *_attention_failures(circuit, previous, induction, criteria),
        *_composition_failures(circuit, k_comp, baseline, criteria),
        *_ablation_failures(circuit, clean, per_head, together, criteria),
    ]
    return InductionCheck(previous_token=previous, induction=induction, k_composition=k_comp,
                          k_composition_baseline=baseline, clean_loss=clean, ablated_loss=per_head,
                          induction_heads_ablated_loss=together, circuit=circuit, criteria=criteria,
                          failures=tuple(failures), n_seqs=n_seqs, seed=seed)


def _attention_failures(circuit: InductionCircuit, previous: Tensor, induction: Tensor, c: Criteria) -> list[str]:
    (_, h0), (_, h1) = circuit.previous_token_head, circuit.induction_head
    failures = []
    if not previous[0, h0] > c.min_previous_token_score:
        failures.append(f"previous-token score of L0H{h0} is {previous[0, h0]:.3f}, not > {c.min_previous_token_score}")
    if not induction[1, h1] > c.min_induction_score:
        failures.append(
            f"no induction head: the best, L1H{h1}, scores {induction[1, h1]:.3f}, not > {c.min_induction_score}"
        )
    return failures


def _composition_failures(circuit: InductionCircuit, k_comp: Tensor, baseline: tuple[float, float],
                          c: Criteria) -> list[str]:
    _, h0 = circuit.previous_token_head
    mean, std = baseline
    failures = []
    for _, h1 in circuit.induction_heads:
        others = torch.cat([k_comp[:h0, h1], k_comp[h0 + 1:, h1]])
        bound = max(c.min_k_composition_ratio * mean, mean + c.min_k_composition_sigmas * std, float(others.max()))
        if not k_comp[h0, h1] > bound:
            failures.append(f"K-composition L0H{h0} -> L1H{h1} is {k_comp[h0, h1]:.3f}, not > {bound:.3f} "
                            f"(random baseline {mean:.3f} ± {std:.3f}; other layer-0 heads up to {others.max():.3f})")
    return failures


def _ablation_failures(circuit: InductionCircuit, clean: float, per_head: Tensor, together: float,
                       c: Criteria) -> list[str]:
    failures = []
    if not clean < c.max_clean_loss:
        failures.append(f"clean induction-token loss is {clean:.3f} nats, not < {c.max_clean_loss}")
    outside = per_head.clone()
    for layer, head in circuit.heads:
        outside[layer, head] = float("-inf")
    largest_outside = max(float(outside.max()) - clean, 0.0)
    bound = max(c.min_ablation_increase, c.min_ablation_ratio * largest_outside)
    layer, head = circuit.previous_token_head
    rises = {f"ablating L{layer}H{head}": float(per_head[layer, head]) - clean,
             "ablating the induction heads together": together - clean}
    for what, rise in rises.items():
        if not rise > bound:
            failures.append(f"{what} raises the loss by {rise:.3f} nats, not > {bound:.3f} "
                            f"(largest rise from one head outside the circuit: {largest_outside:.3f})")
    return failures
