"""What is explained: units whose activation on every stored token can be computed from an
activation store. One :class:`UnitSource` per kind, all read the same way::

    units = sae_units(sae, model)                         # SAE or transcoder latents
    units = neuron_units(model, "blocks.15.mlp.hook_post")  # MLP neurons (a store of that point)
    acts = units.activations(x, token_ids, [3, 17])       # (tokens, 2)

A source also knows its units' direct effect on the logits (``W_dec @ W_U`` through the
final norm's weight), which the no-LM baseline explainer reads. Ground-truth indicator
units (:mod:`mechscope.autointerp.ground_truth`) are sources that read token ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from mechscope.errors import InputError

ActivationFn = Callable[[Tensor | None, Tensor, Sequence[int]], Tensor]
"""(stored activations (tokens, width) or None, token ids (tokens,), units) -> (tokens, units)."""


@dataclass(frozen=True, kw_only=True)
class UnitSource:
    """A family of units (latents, neurons, indicators) computed from an activation store."""

    module: str
    """The name files are filed under (delphi's module): the hook point the units live at."""
    n_units: int
    """How many units there are; unit indices run over ``range(n_units)``."""
    reads: str | None
    """The stored hook point whose activations it needs, or None (token ids only)."""
    sparse: bool
    """True when exactly zero means off (SAE latents, indicators); dense units (neurons)
    need a threshold to say when they fire (see :class:`~.examples.ExampleConfig`)."""
    activations: ActivationFn = field(repr=False)
    """Computes the named units' activations on a chunk of stored tokens."""
    logit_effects: Callable[[Sequence[int]], Tensor | None] = field(repr=False, default=lambda units: None)
    """Per unit, the logit change per unit activation (units d_vocab), or None if unknown."""

    def unit_name(self, unit: int) -> str:
        """delphi's name for a unit: ``{module}_latent{unit}``."""
        return f"{self.module}_latent{unit}"

    def check_units(self, units: Sequence[int]) -> list[int]:
        units = [int(u) for u in units]
        bad = [u for u in units if not 0 <= u < self.n_units]
        if bad:
            raise InputError(f"units must lie in [0, {self.n_units}) for {self.module}; received {bad[:5]}")
        if len(set(units)) != len(units):
            raise InputError(f"units must be distinct; received {len(units)} with repeats")
        return units


@torch.no_grad()
def sae_units(sae, model=None) -> UnitSource:
    """The latents of an SAE or transcoder: they read its input hook point."""
    if sae.cfg.hook_name is None:
        raise InputError("the SAE does not say which hook point it reads (cfg.hook_name); set it before explaining")
    module = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name

    @torch.no_grad()
    def activations(x: Float[Tensor, "tokens d_in"], token_ids: Tensor, units: Sequence[int]) -> Tensor:
        pre = sae.encode_pre(x)
        return sae.activate(pre)[:, list(units)].float()

    def effects(units: Sequence[int]) -> Tensor | None:
        if model is None:
            return None
        from mechscope.sae.dash_stats import logit_effects

        return logit_effects(model, sae, list(units))[0]

    return UnitSource(module=module, n_units=sae.cfg.d_sae, reads=sae.cfg.hook_name, sparse=True,
                      activations=activations, logit_effects=effects)


def neuron_units(model, hook_name: str) -> UnitSource:
    """The neurons of an MLP: the stored ``blocks.L.mlp.hook_post`` columns themselves."""
    point = model.hook_point(hook_name)
    if point.kind != "mlp.hook_post":
        raise InputError(f"neurons are read at blocks.L.mlp.hook_post; received {hook_name!r}")

    def activations(x: Tensor, token_ids: Int[Tensor, " tokens"], units: Sequence[int]) -> Tensor:
        return x[:, list(units)].float()

    def effects(units: Sequence[int]) -> Tensor | None:
        if model.cfg.post_norms:  # the MLP's output passes a norm before the residual stream
            return None
        from mechscope.sae.dash_stats import unembed_directions

        rows = model.W_out[point.layer][list(units)].detach().float()
        return unembed_directions(model, rows, f"blocks.{point.layer}.hook_mlp_out")[0]

    return UnitSource(module=hook_name, n_units=model.cfg.d_mlp, reads=hook_name, sparse=False,
                      activations=activations, logit_effects=effects)
