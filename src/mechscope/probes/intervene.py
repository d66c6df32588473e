"""Probes as interventions: does the direction a probe found change the behaviour?

A probe shows that a property can be *read* from activations, not that the model uses
it. The causal check: edit the activations along the probe's direction and measure the
task's metric, against random directions edited the same way::

    result = probe(model, make_probe_data("sva-number", model), hook_name="blocks.12.hook_resid_post")
    check = probe_intervention(model, make_task("sva", model), result.direction,
                               hook_name="blocks.12.hook_resid_post", mode="ablate")
    check.effect, check.random_effects.mean(), check.z

Modes (:data:`INTERVENTIONS`): ``ablate`` projects the unit direction ``u`` out of every
position's activation (``x - (x·u) u``); ``add`` adds ``alpha * u``. Random directions
are Gaussian, normalised like ``u``, one per seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError, check_int
from mechscope.results import Result
from mechscope.tasks.task import Task


def _ablate(x: Tensor, u: Tensor, alpha: float) -> Tensor:
    return x - (x @ u)[..., None] * u


def _add(x: Tensor, u: Tensor, alpha: float) -> Tensor:
    return x + alpha * u


INTERVENTIONS: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {"ablate": _ablate, "add": _add}
"""Edits of an activation ``x`` (… d) along a unit direction ``u``, by name."""


@dataclass(frozen=True)
class ProbeIntervention(Result):
    """A task's metric with a direction edited, against random directions edited alike."""

    task: str
    """The task's name."""
    hook_name: str
    """Where the direction was edited (every position)."""
    mode: str
    """A key of :data:`INTERVENTIONS`."""
    alpha: float
    """Strength of ``add`` (activation units); unused by ``ablate``."""
    baseline: float
    """Mean metric of the unedited model."""
    effect: float
    """Mean metric with the probe's direction edited, minus ``baseline``."""
    random_effects: Float[Tensor, "n_random"]
    """The same for each random direction."""
    z: float
    """``(effect - mean of random effects) / their standard deviation``."""
    per_prompt: Float[Tensor, "2 prompt"]
    """Metric per prompt: unedited, then with the probe's direction edited."""

    def plot(self):
        """The random directions' effects as a strip, the probe direction's as a line."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 2.6), layout="constrained")
        ax = fig.add_subplot()
        ax.scatter(self.random_effects.tolist(), [0] * len(self.random_effects), color="C7", alpha=0.7,
                   label=f"{len(self.random_effects)} random directions")
        ax.axvline(self.effect, color="C3", lw=2, label="probe direction")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks([])
        ax.set_xlabel(f"change of the {self.task} metric ({self.mode} at {self.hook_name})")
        ax.legend(fontsize=8, loc="upper left")
        return fig


def probe_intervention(
    model, task: Task, direction: Float[Tensor, "d"], *, hook_name: str, mode: str = "ablate", alpha: float = 1.0,
    n_random: int = 16, seed: int = 0,
) -> ProbeIntervention:
    """Edit ``direction`` at ``hook_name`` (every position) on ``task``'s clean prompts;
    compare the metric's change with ``n_random`` random directions'."""
    if mode not in INTERVENTIONS:
        raise InputError(f"mode must be one of {', '.join(INTERVENTIONS)}; received {mode!r}")
    check_int("n_random", n_random, minimum=2)
    point = model.hook_point(hook_name)
    direction = torch.as_tensor(direction, dtype=torch.float32).flatten()
    if direction.norm() == 0 or not torch.isfinite(direction).all():
        raise InputError("the direction is zero or not finite; a multi-class probe has no single direction")
    if point.dims[-1] != "d_model" or direction.shape[0] != model.cfg.d_model:
        raise InputError(f"edit a d_model-wide point (e.g. blocks.5.hook_resid_post) with a {model.cfg.d_model}-wide "
                         f"direction; received {hook_name} and a direction of {direction.shape[0]}")
    metric = task.metric_fn(model)
    rows = torch.arange(len(task))

    def run(u: Tensor | None) -> Tensor:
        edit = (lambda x, hook: INTERVENTIONS[mode](x, u.to(x), alpha))  # noqa: E731
        with torch.no_grad(), model.hooks(fwd=[(hook_name, edit)] if u is not None else []):
            logits = model(task.clean)
        return metric(logits[rows, task.answer_pos]).float().cpu()

    plain = run(None)
    edited = run(direction / direction.norm())
    generator = torch.Generator().manual_seed(seed)
    randoms = torch.randn(n_random, direction.shape[0], generator=generator)
    random_effects = torch.stack([run(r / r.norm()).mean() - plain.mean() for r in randoms])
    effect = float(edited.mean() - plain.mean())
    spread = float(random_effects.std().clamp_min(1e-12))
    return ProbeIntervention(
        task=task.name, hook_name=hook_name, mode=mode, alpha=float(alpha), baseline=float(plain.mean()),
        effect=effect, random_effects=random_effects, z=(effect - float(random_effects.mean())) / spread,
        per_prompt=torch.stack([plain, edited]),
    )
