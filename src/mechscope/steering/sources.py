"""Where steering vectors come from: contrastive pairs read by one method, or a given direction.

::

    pairs = make_pairs("weddings", model)
    vector = make_vector(model, pairs, method="mean-diff", layers=[8, 10, 12], position="last")
    vector = make_vector(model, pairs, method="sae", layers=[15], sae=load_sae("sae/"))   # the latent that differs most
    vector = vector_from_sae(model, sae, feature=1234)                               # a latent of your choice
    vector = vector_from_direction(model, probe_result.direction, "blocks.12.hook_resid_post", method="probe")

Every method in :data:`VECTOR_SOURCES` maps the activations of the positive and the
negative prompts at one hook point (read at ``position``, one row per pair) to a direction:

* ``actadd`` (Turner et al.): one pair's difference; exactly one pair.
* ``mean-diff`` (CAA, Rimsky et al.): the mean of the pairs' differences.
* ``pca-diff`` (repeng): the first principal component of the differences (centred, as
  repeng's scikit-learn PCA does), signed so that most positives project above their
  negatives. Centring removes the differences' mean, so when every pair differs by about
  the same shift the component is what varies *around* it; ``center=False`` keeps it.
* ``probe``: a logistic probe separating positives from negatives (mechscope.probes).
* ``sae``: an SAE latent's decoder row: ``feature``, or else the latent whose mean
  activation differs most between positives and negatives.

Unit directions (``pca-diff``, ``probe``) are scaled to the mean difference's norm and a
chosen SAE latent by its mean activation difference, so that strength 1 means about one
typical difference for every method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.activations.manifest import ModelIdentity
from mechscope.activations.positions import Position, read_positions
from mechscope.errors import InputError
from mechscope.probes.data import split_examples
from mechscope.probes.fit import ProbeConfig, fit_probe
from mechscope.sae.splice import check_features, check_sae_fits
from mechscope.steering.pairs import ContrastPairs
from mechscope.steering.vector import SteeringVector

Acts = Float[Tensor, "pair width"]


def actadd(positive: Acts, negative: Acts, *, hook_name: str) -> Tensor:
    if positive.shape[0] != 1:
        raise InputError(f"actadd takes exactly one pair (its difference is the vector); received "
                         f"{positive.shape[0]}. Use method='mean-diff' for many pairs")
    return positive[0] - negative[0]


def mean_diff(positive: Acts, negative: Acts, *, hook_name: str) -> Tensor:
    return (positive - negative).mean(0)


def pca_diff(positive: Acts, negative: Acts, *, hook_name: str, center: bool = True) -> Tensor:
    diffs = positive - negative
    if diffs.shape[0] < 2:
        raise InputError("pca-diff needs at least two pairs (one difference has no principal component)")
    centred = diffs - diffs.mean(0) if center else diffs
    component = torch.linalg.svd(centred.double(), full_matrices=False).Vh[0].float()
    # repeng's sign rule: most pairs' positive prompt projects above its negative one.
    if ((positive - negative) @ component > 0).float().mean() < 0.5:
        component = -component
    return component * diffs.mean(0).norm()


def probe_direction(positive: Acts, negative: Acts, *, hook_name: str, config: ProbeConfig = ProbeConfig()) -> Tensor:
    x = torch.cat([positive, negative])
    labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))]).long()
    if len(x) < 6:
        raise InputError(f"a probe direction needs at least 3 pairs (train, validation and test examples of each "
                         f"class); received {len(positive)}")
    split = split_examples(len(x), fractions=config.fractions, seed=config.seed, strata=labels)
    probe, _ = fit_probe(x, labels, split, config, classes=("negative", "positive"))
    return probe.direction * (positive - negative).mean(0).norm()


def sae_latent(positive: Acts, negative: Acts, *, hook_name: str, sae, feature: int | None = None) -> Tensor:
    point = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
    if hook_name != point:
        raise InputError(f"this SAE's directions live at {point}; received layers that give {hook_name}. "
                         f"Pass the SAE's layer (and site)")
    if feature is not None:
        (feature,) = check_features(sae, [feature])
        return sae.W_dec[feature].detach().float().cpu()
    if sae.cfg.is_transcoder:
        raise InputError("a transcoder's latents read another point than they write; pass feature= explicitly")
    with torch.no_grad():
        gap = sae.encode(positive.to(sae.W_enc)).mean(0) - sae.encode(negative.to(sae.W_enc)).mean(0)
    best = int(gap.argmax())
    return (sae.W_dec[best] * gap[best]).detach().float().cpu()


VECTOR_SOURCES: dict[str, Callable[..., Tensor]] = {
    "actadd": actadd,
    "mean-diff": mean_diff,
    "pca-diff": pca_diff,
    "probe": probe_direction,
    "sae": sae_latent,
}
"""Vector methods by name: ``method(positive, negative, *, hook_name, **options) -> direction``."""


def make_vector(
    model, pairs: ContrastPairs, *, method: str = "mean-diff", layers: int | Sequence[int] = (), site: str =
    "hook_resid_post", position: str | Position = "last", batch_size: int = 32, **options,
) -> SteeringVector:
    """A vector with one direction per layer at ``blocks.{layer}.{site}``, from the pairs'
    activations read at ``position`` (both sides in the same forward passes)."""
    if method not in VECTOR_SOURCES:
        raise InputError(f"unknown vector method {method!r}; known: {', '.join(VECTOR_SOURCES)}")
    layers = [layers] if isinstance(layers, int) else list(layers)
    if not layers or any(isinstance(l, bool) or not isinstance(l, int) or not 0 <= l < model.cfg.n_layers
                         for l in layers):
        raise InputError(f"layers must be one or more integers in [0, {model.cfg.n_layers}); received {layers}")
    position = Position.parse(position)
    names = [f"blocks.{layer}.{site}" for layer in layers]
    read = read_positions(model, names, [*pairs.positive, *pairs.negative], position, batch_size=batch_size)
    n = len(pairs)
    directions = {name: VECTOR_SOURCES[method](read.acts[name][:n], read.acts[name][n:], hook_name=name, **options)
                  for name in names}
    return SteeringVector(directions=directions, model=ModelIdentity.of(model), method=method,
                          position=position.name, source=pairs.describe())


def vector_from_direction(
    model, direction: Tensor, hook_name: str, *, method: str, source: str = "", position: str = "",
) -> SteeringVector:
    """A vector from a direction you have (a probe's, a difference of your own) at one point."""
    vector = SteeringVector(directions={hook_name: torch.as_tensor(direction).detach().float().cpu().flatten()},
                            model=ModelIdentity.of(model), method=method, position=position, source=source)
    vector.check_fits(model)
    return vector


def vector_from_sae(model, sae, feature: int, *, sae_name: str = "") -> SteeringVector:
    """Latent ``feature``'s decoder row, at the SAE's hook point (a transcoder's: the point
    it writes). Strength is then in the latent's own units: ``alpha`` adds what the
    decoder would if the latent fired ``alpha`` higher."""
    check_sae_fits(model, sae)
    (feature,) = check_features(sae, [feature])
    point = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
    where = sae_name or f"{sae.cfg.architecture} SAE ({sae.cfg.d_sae} latents, made on {sae.cfg.model_name})"
    return vector_from_direction(model, sae.W_dec[feature], point, method="sae", source=f"{where}, latent {feature}")
