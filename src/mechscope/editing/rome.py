"""Rank-One Model Editing (Meng et al. 2022): rewrite one fact in one MLP.

::

    request = make_request(model, prompt="{} is located in the city of", subject="The Eiffel Tower", target="Rome")
    edit = rome(model, [request])                     # the layer comes from causal tracing
    with edited(model, edit):
        ...

The MLP output projection W of layer l is treated as a key–value memory. ROME finds

* the key k*: the projection's input at the subject's last token, averaged over the
  prompt behind a few model-generated prefixes (:mod:`mechscope.editing.context`);
* the value v*: what the projection should output there for the model to say the new
  target (:func:`mechscope.editing.values.optimize_value`);

and adds the rank-one update ``u (v* − W k₀)ᵀ / (u·k₀)`` with ``u = C⁻¹ k*`` (normalised),
C the keys' second moment over the corpus and sentences naming entities
(:mod:`mechscope.editing.covariance`) and k₀
the key of the bare prompt. Then ``W' k₀ = v*`` exactly, while keys unlike k* (in C's
metric) are barely changed. Several requests are applied one after another, each
computed on the model already carrying the earlier ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from mechscope.editing.context import context_templates, subject_keys, with_prefixes
from mechscope.editing.covariance import CovarianceConfig, key_covariance
from mechscope.editing.edit import Edit, LayerUpdate, check_requests, in_turn
from mechscope.editing.layer import resolve_layer
from mechscope.editing.values import ValueConfig, optimize_value
from mechscope.errors import InputError
from mechscope.facts.counterfact import EditRequest
from mechscope.models.identity import weights_hash


@dataclass(frozen=True, kw_only=True)
class RomeConfig:
    """ROME's settings."""

    layer: int | None = None
    """The edited layer; None takes it from causal tracing (:func:`mechscope.editing.choose_edit_layer`)."""
    value: ValueConfig = field(default_factory=lambda: ValueConfig(clamp_norm=2.0))
    """The value optimisation. δ is clamped to 2·‖v₀‖, not the paper's 4 (GPT-2 XL). On
    smollm2-135m (layer 3, generation off), chosen on 16 requests (4: ES 100 / PS 100 / NS 89.4;
    2: ES 100 / PS 96.9 / NS 95.0) and checked on the next 32 (4: ES 100 / PS 98.4 / NS 83.3;
    2: ES 100 / PS 96.9 / NS 86.3): a smaller push at the subject leaks less to its neighbours."""
    covariance: CovarianceConfig = field(default_factory=lambda: CovarianceConfig(entity_weight=0.3))
    """Where the key statistics come from: the offline corpus with 30% from sentences naming
    entities (the built-in facts). With the corpus alone, C⁻¹ magnifies what all subjects'
    keys share: on gemma3-270m (layer 5) a neighbour's subject key received on average 78% of
    the edit's gain (``u·k′ / u·k``), and NS was 17.0 on requests 0-7 (ES 100 / PS 100). With
    facts about *other* subjects mixed in at 0.3 the gain fell to 30% and NS rose to 75.9 (ES /
    PS 100; weights 0.1 / 0.3 / 0.5 gave gains of 39 / 30 / 25%). Checked on requests 8-23:
    NS 20.6 → 64.4 (ES 100, PS 96.9 both); on smollm2-135m (layer 3), requests 16-47:
    NS 86.3 → 89.2, PS 96.9 → 96.9, ES 100 → 96.9 (``benchmarks/editing.py --start``)."""
    ridge: float = 1e-4
    """Added to C's diagonal, as a fraction of its mean diagonal, before solving (C is estimated, not exact)."""

    def __post_init__(self) -> None:
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int)):
            raise InputError(f"RomeConfig.layer must be an integer or None; received {self.layer!r}")
        if not isinstance(self.ridge, (int, float)) or self.ridge < 0:
            raise InputError(f"RomeConfig.ridge must be a non-negative number; received {self.ridge!r}")


def rome(model, requests: Sequence[EditRequest], *, config: RomeConfig = RomeConfig(),
         progress: bool = False) -> Edit:
    """A ROME edit of ``model`` for ``requests`` (applied in turn), computed without changing it."""
    requests = check_requests(requests)
    started = time.perf_counter()
    layer = resolve_layer(model, config.layer)
    digest = weights_hash(model)
    stats = key_covariance(model, layer, config=config.covariance, progress=progress)
    inverse_metric = _regularized(stats.matrix, config.ridge)
    templates = context_templates(model)
    updates, values = in_turn(model, requests, lambda request: _rank_one(
        model, request, layer, inverse_metric, templates, config.value))
    info = {"layer": layer, "covariance_tokens": stats.n_tokens, "losses": [list(v.losses) for v in values],
            "target_prob": [v.target_prob for v in values], "seconds": time.perf_counter() - started}
    return Edit(method="rome", updates=tuple(updates), requests=requests, model=model.name, model_hash=digest,
                info=info)


def _rank_one(model, request: EditRequest, layer: int, solve, templates, value_config: ValueConfig):
    rewrite = request.requested_rewrite
    items = [(text, offset, rewrite.subject) for text, offset in with_prefixes(templates, rewrite.text)]
    keys = subject_keys(model, layer, items)
    key_star, key_bare = keys.mean(0), keys[0]
    u = solve(key_star.double()).float()
    u = u / u.norm()
    value = optimize_value(model, rewrite, layer=layer, site="mlp", templates=templates, config=value_config)
    # value.init is the projection's output for the bare prompt, so its bias (if any) cancels.
    right = (value.target - value.init) / torch.dot(key_bare, u)
    return LayerUpdate(layer=layer, left=u[:, None].detach(), right=right[None, :].detach()), value


def _regularized(matrix: torch.Tensor, ridge: float):
    """``x ↦ (C + ridge·mean(diag C)·I)⁻¹ x`` through one Cholesky factorisation."""
    c = matrix.double()
    c = c + ridge * c.diagonal().mean() * torch.eye(c.shape[0], dtype=c.dtype)
    factor = torch.linalg.cholesky(c)
    return lambda x: torch.cholesky_solve(x.reshape(-1, 1).to(c.dtype).cpu(), factor)[:, 0].to(x.device)
