"""Which SAE latents carry a task's behaviour? Gradient × activation, checked by ablation.

    attr = feature_attribution(model, sae, task)        # one backward pass
    attr.top(10)                                        # [(latent, attribution), ...]
    exact_feature_ablation(model, sae, task, [f for f, _ in attr.top(5)])   # the check

The SAE is spliced in *with its error term*, so the model's output is exactly its own
and every latent is a node between the input and the metric (Marks et al. 2024,
"Sparse feature circuits"). A latent's attribution is

    A_i = sum over prompts and positions of  f_i · ∂m/∂f_i

where m is the task's metric averaged over prompts: the first-order estimate of how
much m drops when latent i is zero-ablated everywhere, ``m(clean) - m(f_i = 0)``.
:func:`exact_feature_ablation` measures that drop exactly, one forward pass per latent;
the two agree where the metric is close to linear in the ablated latent (small
decoded contributions) and can differ where it is not (a latent that saturates a
softmax), which is what the check is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.errors import InputError
from mechscope.results import Result
from mechscope.sae.splice import check_features, check_sae_fits, inference_mode, spliced
from mechscope.tasks.task import Task


@dataclass(frozen=True)
class FeatureAttribution(Result):
    """Gradient × activation of every latent on a task's metric."""

    task: str
    """The task's name."""
    metric: str
    """The task's metric (averaged over its prompts)."""
    hook_name: str
    """Where the SAE reads."""
    metric_value: float
    """The metric on the clean prompts (the model's own: the error term keeps the output exact)."""
    attributions: Float[Tensor, "d_sae"]
    """Sum over prompts and positions of f · ∂metric/∂f: the estimated drop of the metric
    when the latent is zero-ablated on every prompt."""
    by_position: Float[Tensor, "pos d_sae"]
    """The same per position (prompts are left-padded, so positions count from the end alike)."""
    activations: Float[Tensor, "d_sae"]
    """Each latent's activation summed over positions, averaged over prompts."""

    def top(self, n: int = 10, *, by_abs: bool = True) -> list[tuple[int, float]]:
        """The ``n`` latents with the largest attributions (by magnitude unless ``by_abs=False``)."""
        n = min(n, self.attributions.shape[0])
        scores = self.attributions.abs() if by_abs else self.attributions
        order = scores.topk(n).indices.tolist()
        return [(i, float(self.attributions[i])) for i in order]


def feature_attribution(model, sae, task: Task, *, skip_bos: bool = True) -> FeatureAttribution:
    """Gradient × activation of every latent of ``sae`` on ``task``'s metric (clean prompts)."""
    check_sae_fits(model, sae)
    metric_fn = task.metric_fn(model)  # baselines (kl, normalized) run outside the splice
    batch = task.clean.to(model.device)
    rows = torch.arange(len(task), device=model.device)
    kept: list[Tensor] = []

    def keep_as_leaf(latents: Tensor) -> Tensor:
        leaf = latents.detach().requires_grad_(True)
        kept.append(leaf)
        return leaf

    with torch.enable_grad(), spliced(model, sae, error_term=True, edit=keep_as_leaf, skip_bos=skip_bos):
        logits = model(batch)
        metric = metric_fn(logits[rows, task.answer_pos.to(model.device)]).mean()
        (grad,) = torch.autograd.grad(metric, kept[-1])
    latents = kept[-1].detach()
    per_token = (latents * grad).float()  # batch pos d_sae
    return FeatureAttribution(
        task=task.name,
        metric=task.metric,
        hook_name=sae.cfg.hook_name,
        metric_value=float(metric.detach()),
        attributions=per_token.sum((0, 1)).cpu(),
        by_position=per_token.sum(0).cpu(),
        activations=latents.float().sum(1).mean(0).cpu(),
    )


def exact_feature_ablation(
    model, sae, task: Task, features: Sequence[int], *, skip_bos: bool = True
) -> Float[Tensor, "feature"]:
    """For each latent, ``metric(clean) - metric(latent zero-ablated at every position)``,
    measured with the SAE spliced in with its error term (one forward pass per latent):
    the quantity :func:`feature_attribution` estimates."""
    features = check_features(sae, list(features))
    if not features:
        raise InputError("give at least one latent to ablate, e.g. features=[0, 5]")
    metric_fn = task.metric_fn(model)
    batch = task.clean.to(model.device)
    rows = torch.arange(len(task), device=model.device)
    pos = task.answer_pos.to(model.device)

    def metric_with(ablate: list[int]) -> float:
        with spliced(model, sae, error_term=True, ablate=ablate, skip_bos=skip_bos):
            return float(metric_fn(model(batch)[rows, pos]).mean())

    with torch.no_grad(), inference_mode(sae):
        clean = metric_with([])
        return torch.tensor([clean - metric_with([feature]) for feature in features])
