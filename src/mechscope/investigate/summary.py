"""The investigation in a few sentences, written from its numbers by templates (no language
model), each linked to the section whose figure backs it, with the caveats that apply.

A caveat is printed wherever the evidence is weak: a circuit that does not hold on
held-out prompts (|1 − f| > 0.2) or overshoots (f > 1.2), AtP* and exact patching
disagreeing, few prompts, accuracy near the floor, no circuit within the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mechscope.circuits.check import OVERSHOOT
from mechscope.results import Result

HELDOUT_TOLERANCE = 0.2
"""|1 − f| on held-out prompts above this: the circuit does not hold out of sample."""
MIN_AGREEMENT = 0.5
"""Spearman (or top-k overlap) below this: AtP* does not rank heads as exact patching does."""
FEW_PROMPTS = 16
"""Fewer discovery prompts than this: noisy estimates."""
NEAR_FLOOR = 0.15
"""Clean accuracy within this of the floor: the behaviour is weak."""


@dataclass(frozen=True)
class Claim:
    """One sentence and the report section holding its evidence."""

    text: str
    section: str
    """Anchor of the section (``behaviour``, ``where``, ``who``, ``circuit``, ``features``)."""


@dataclass(frozen=True, kw_only=True)
class Summary(Result):
    """Claims and caveats."""

    claims: tuple[Claim, ...]
    caveats: tuple[Claim, ...]


def summarize(model_name: str, task_name: str, behaviour, split=None, where=None, who=None, circuit=None,
              features=None) -> Summary:
    """Sentences for whichever stages ran (a refused investigation has only ``behaviour``)."""
    claims, caveats = [], []
    d = behaviour.discovery
    if behaviour.refusal:
        return Summary(claims=(Claim(f"Stopped: {behaviour.refusal}.", "behaviour"),), caveats=())
    claims.append(Claim(
        f"{model_name} does {task_name}: the answer is the top next token on {d.clean_accuracy:.0%} of discovery "
        f"prompts ({behaviour.heldout.clean_accuracy:.0%} held out), and the corruption moves the logit difference "
        f"from {d.clean_metric:.2f} to {d.corrupt_metric:.2f}.", "behaviour"))
    if d.clean_accuracy < behaviour.min_accuracy + NEAR_FLOOR:
        caveats.append(Claim(f"Clean accuracy {d.clean_accuracy:.0%} is near the floor "
                             f"({behaviour.min_accuracy:.0%}): the behaviour is weak.", "behaviour"))
    if d.n < FEW_PROMPTS:
        caveats.append(Claim(f"Only {d.n} discovery prompts: effects and circuits are noisy; use -n 32 or more.",
                             "behaviour"))
    if where is not None:
        claims += _where_claims(where)
        agreement = where.agreement
        if not (agreement.spearman >= MIN_AGREEMENT and agreement.top_overlap >= MIN_AGREEMENT):
            caveats.append(Claim(f"AtP* and exact patching disagree on these layers (Spearman "
                                 f"{agreement.spearman:.2f}, {agreement.top_overlap:.0%} of the top {agreement.k} "
                                 f"shared): trust the exact effects.", "where"))
    if who is not None:
        claims += _who_claims(who)
    if circuit is not None:
        claims.append(_circuit_claim(circuit, split))
        caveats += _circuit_caveats(circuit)
    if features is not None:
        for sae in features.saes:
            top = sae.attribution.top(3)
            names = ", ".join(f"#{i} ({v:+.2f})" for i, v in top)
            claims.append(Claim(f"In the SAE at {sae.attribution.hook_name}, the features that matter most for the "
                                f"answer are {names} (gradient × activation).", "features"))
    return Summary(claims=tuple(claims), caveats=tuple(caveats))


def _where_claims(where) -> list[Claim]:
    out = []
    resid = where.resid
    gap = resid.source_value - resid.base_value
    if gap and resid.dims == ("layer", "pos"):
        last = resid.effects[:, -1] / gap
        carried = [layer for layer, value in zip(resid.layers, last.tolist()) if value >= 0.5]
        if carried:
            out.append(Claim(f"Restoring the clean residual stream at the last position recovers at least half of "
                             f"the behaviour from layer {carried[0]} on; before that the difference sits at earlier "
                             f"positions (residual patching by layer × position).", "where"))
    if where.top_heads:
        heads = ", ".join(f"{h} ({where.head_effects[h]:+.2f})" for h in where.top_heads[:4])
        agreement = where.agreement
        out.append(Claim(f"The heads whose clean output restores the most are {heads} (exact patching of the "
                         f"layers AtP* ranks highest; AtP* vs exact: Spearman {agreement.spearman:.2f}, "
                         f"{agreement.top_overlap:.0%} of the top {agreement.k} shared).", "where"))
    dla = where.dla.top(3)
    out.append(Claim("Directly on the logits, the largest contributions come from "
                     + ", ".join(f"{name} ({value:+.2f})" for name, value in dla)
                     + f" of a total logit difference of {where.dla.total:.2f}.", "where"))
    return out


def _who_claims(who) -> list[Claim]:
    out = []
    for head, roles in who.labels.items():
        if roles:
            text = ", ".join(f"{role} ({score:.2f})" for role, score in roles[:3])
            out.append(Claim(f"{head}: {text}.", "who"))
    unlabelled = [head for head, roles in who.labels.items() if not roles]
    if unlabelled:
        out.append(Claim(f"No clear role among the scored ones for {', '.join(unlabelled)}.", "who"))
    return out


def _circuit_claim(stage, split) -> Claim:
    check = stage.check
    where_held = f" ({split.how})" if split is not None else ""
    reached = (f"the smallest circuit with |1 − f| ≤ {stage.tolerance:g}" if stage.reached
               else f"the largest circuit the budget allows (none had |1 − f| ≤ {stage.tolerance:g})")
    return Claim(
        f"A circuit of {check.n_edges:,} edges ({check.fraction:.1%} of the graph; {reached}) reproduces "
        f"f = {check.f_discovery:.2f} of the behaviour on discovery prompts and f = {check.f_heldout:.2f} on "
        f"held-out prompts{where_held}, |1 − f| = {check.heldout_error:.2f}; its complement alone gives "
        f"f = {check.complement_f:.2f}.", "circuit")


def _circuit_caveats(stage) -> list[Claim]:
    check, out = stage.check, []
    if not math.isfinite(check.f_heldout) or check.heldout_error > HELDOUT_TOLERANCE:
        out.append(Claim(f"The circuit does not hold out of sample: f = {check.f_heldout:.2f} on held-out prompts "
                         f"(|1 − f| = {check.heldout_error:.2f} > {HELDOUT_TOLERANCE}).", "circuit"))
    if max(check.f_discovery, check.f_heldout) > OVERSHOOT:
        out.append(Claim(f"f above {OVERSHOOT} (discovery {check.f_discovery:.2f}, held out {check.f_heldout:.2f}): "
                         f"the circuit leaves out edges that work against the answer and amplifies the "
                         f"behaviour; a faithful circuit has f close to 1.", "circuit"))
    if not stage.reached:
        out.append(Claim(f"No circuit within the budget has |1 − f| ≤ {stage.tolerance:g} on discovery prompts; "
                         f"the one shown is the largest allowed.", "circuit"))
    if abs(check.complement_f) > 0.2:
        out.append(Claim(f"The complement alone still gives f = {check.complement_f:.2f}: the circuit is not "
                         f"complete.", "circuit"))
    return out
