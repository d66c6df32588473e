"""Splicing: run the model with a sparse dictionary's output in place of the activation.

Inside the block, the activation at ``sae.cfg.hook_name`` is replaced by the SAE's
reconstruction (a transcoder: the activation at ``hook_name_out`` is replaced by what it
predicts from the input read at ``hook_name``)::

    with spliced(model, sae):                          # x -> x_hat
        logits = model(prompt)
    with spliced(model, sae, error_term=True, ablate=[12]):   # x -> x_hat - f_12 W_dec[12] + (x - x_hat)
        logits = model(prompt)

**Error term.** ``error_term=True`` adds ``x - x_hat`` so that, without edits, the output
is the model's own activation; edits to latents (``ablate``, ``clamp``, ``edit``) then
change it by exactly their decoded difference. As in SAELens, the error is computed
from the unedited reconstruction with ``x_hat`` detached: gradients reach the latents
through the decoder (``d out / d f = W_dec``, what feature attribution needs) and reach
``x`` both through the encoder and through the error. ``detach_error=True`` makes the
whole error a constant, so upstream gradients pass through the SAE only.

**BOS.** ``skip_bos=True`` (the default) leaves positions that hold the tokenizer's BOS
token alone. The BOS residual is an outlier of huge norm that SAEs are usually trained
without (SAELens and Gemma Scope exclude it when evaluating), so splicing it would
measure something the SAE never learnt. Positions are recognised by their token id, so
this also holds during cached generation, where each step sees one new position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from mechscope.activations.collect import hook_width
from mechscope.errors import HookPointError, InputError

LatentEdit = Callable[[Tensor], Tensor]
"""``edit(latents) -> latents``, latents shaped (batch pos d_sae)."""


@dataclass
class ForwardInputs:
    """What the current forward call of the model was given (updated on every call)."""

    ids: Tensor | None = None
    """Token ids (batch pos) of the call, or None if it passed embeddings."""
    offset: int = 0
    """Positions already in the KV cache: the absolute position of the call's first token."""


_CACHE_ARGS = ("cache", "past_key_values")


@contextmanager
def tracked_inputs(model) -> Iterator[ForwardInputs]:
    """Keep, for each forward call of ``model.hf_model`` inside the block, its token ids
    and its KV-cache offset. Hook functions see only activations; BOS detection and
    "from position p on" need the ids and absolute positions, also inside ``generate``."""
    state = ForwardInputs()

    def record(module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        state.ids = ids if isinstance(ids, Tensor) else None
        # transformers 5.25 renamed the forward argument past_key_values to cache (the old
        # name stays accepted until 6.0): read whichever this version passes.
        cache = next((kwargs[k] for k in _CACHE_ARGS if kwargs.get(k) is not None), None)
        state.offset = int(cache.get_seq_length()) if cache is not None and hasattr(cache, "get_seq_length") else 0

    handle = model.hf_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield state
    finally:
        handle.remove()


def bos_mask(model, state: ForwardInputs, shape: torch.Size) -> Tensor | None:
    """(batch pos 1) True where the call's token is BOS, or None if nothing is to be kept."""
    bos = model.tokenizer.bos_token_id
    if bos is None or state.ids is None or tuple(state.ids.shape) != tuple(shape[:2]):
        return None
    mask = state.ids == bos
    return mask[..., None] if bool(mask.any()) else None


# ------------------------------------------------------------------ checks
def activation_width(model, name: str) -> int:
    """Width of one token's activation at hook point ``name`` (heads flattened, as SAELens
    does for ``attn.hook_z``); refuses points that are not (batch pos ...)."""
    point = model.hook_point(name)
    if point.dims[:2] != ("batch", "pos") or point.dims[2:] == ("1",):
        raise HookPointError(
            f"an SAE reads one vector per token; {name} has dims ({' '.join(point.dims)}). "
            f"Use a point shaped (batch pos d), e.g. blocks.{point.layer or 0}.hook_resid_post"
        )
    return hook_width(model, name)


def check_sae_fits(model, sae) -> None:
    """Refuse an SAE whose hook points or widths do not match ``model``, in one line."""
    cfg = sae.cfg
    if cfg.hook_name is None:
        raise InputError(
            "this SAE does not say which hook point it reads (cfg.hook_name is None); "
            "set it, e.g. SAEConfig(..., hook_name='blocks.3.hook_resid_post')"
        )
    width = activation_width(model, cfg.hook_name)
    if width != cfg.d_in:
        raise InputError(
            f"the SAE reads {cfg.d_in}-wide activations but {cfg.hook_name} of {model.name} is {width} wide; "
            f"it was trained on another model or hook point (cfg.model_name={cfg.model_name!r})"
        )
    if not cfg.is_transcoder:
        return
    if cfg.hook_name_out is None:
        raise InputError(
            "this transcoder does not say which activation it predicts (cfg.hook_name_out is None); "
            "set it, e.g. hook_name_out='blocks.3.hook_mlp_out'"
        )
    width_out = activation_width(model, cfg.hook_name_out)
    if width_out != cfg.d_out:
        raise InputError(
            f"the transcoder predicts {cfg.d_out}-wide activations but {cfg.hook_name_out} is {width_out} wide"
        )
    names = model.hook_names()
    if names.index(cfg.hook_name) >= names.index(cfg.hook_name_out):
        raise InputError(
            f"a transcoder must read a point before the one it predicts; received hook_name={cfg.hook_name} "
            f"and hook_name_out={cfg.hook_name_out}"
        )


def check_features(sae, features: Sequence[int], what: str = "feature") -> list[int]:
    """``features`` as a list of valid latent indices, or one clear error."""
    out = []
    for feature in features:
        if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < sae.cfg.d_sae:
            raise InputError(
                f"{what} {feature!r} is out of range: this SAE has {sae.cfg.d_sae} latents (0..{sae.cfg.d_sae - 1})"
            )
        out.append(int(feature))
    return out


@contextmanager
def inference_mode(sae) -> Iterator:
    """``sae`` in eval mode for the block, then back to the mode it was in: a batchtopk
    SAE picks latents per batch while training and by its threshold at inference, and a
    trainer may hand over an SAE in the middle of training."""
    was_training = sae.training
    sae.eval()
    try:
        yield sae
    finally:
        sae.train(was_training)


# ---------------------------------------------------------------- splicing
def splice_output(
    sae,
    x: Float[Tensor, "batch pos d_in"],
    target: Float[Tensor, "batch pos d_out"],
    *,
    error_term: bool = False,
    detach_error: bool = False,
    ablate: Sequence[int] = (),
    clamp: Mapping[int, float] | None = None,
    edit: LatentEdit | None = None,
) -> Float[Tensor, "batch pos d_out"]:
    """What replaces ``target`` (= ``x`` for an autoencoder) when ``sae`` is spliced in."""
    out = sae(x)
    latents = out.latents
    edited = bool(ablate) or bool(clamp) or edit is not None
    if ablate or clamp:
        latents = latents.clone()
        if ablate:
            latents[..., list(ablate)] = 0.0
        for feature, value in (clamp or {}).items():
            latents[..., feature] = value
    if edit is not None:
        latents = edit(latents)
    output = sae.decode(latents, x) if edited else out.output
    if error_term:
        target = target.to(output)
        error = (target - out.output).detach() if detach_error else target - out.output.detach()
        output = output + error
    return output


@contextmanager
def spliced(
    model,
    sae,
    *,
    error_term: bool = False,
    detach_error: bool = False,
    ablate: Sequence[int] = (),
    clamp: Mapping[int, float] | None = None,
    edit: LatentEdit | None = None,
    skip_bos: bool = True,
) -> Iterator:
    """Every forward pass in the block runs with ``sae`` spliced in at its hook point.

    Args:
        error_term: add ``x - x_hat`` (see the module docstring), so that only edits change the output.
        detach_error: make the error term a constant for autograd.
        ablate: latents set to zero at every spliced position.
        clamp: ``{latent: value}`` set at every spliced position (as Neuronpedia's steering by clamping).
        edit: a function applied to the latents (batch pos d_sae) after ``ablate`` and ``clamp``.
        skip_bos: leave BOS positions unchanged (see the module docstring).
    """
    check_sae_fits(model, sae)
    ablate = check_features(sae, list(ablate), "ablated latent")
    check_features(sae, list((clamp or {}).keys()), "clamped latent")
    options = dict(error_term=error_term, detach_error=detach_error, ablate=ablate, clamp=clamp, edit=edit)
    cfg = sae.cfg
    with tracked_inputs(model) as state, inference_mode(sae):
        inputs: list[Tensor] = []

        def replace(target: Tensor, hook) -> Tensor:
            flat_target = target.reshape(*target.shape[:2], -1)
            x = inputs.pop() if cfg.is_transcoder else flat_target
            device = next(sae.parameters()).device
            new = splice_output(sae, x.to(device), flat_target.to(device), **options).to(target)
            keep = bos_mask(model, state, target.shape) if skip_bos else None
            if keep is not None:
                new = torch.where(keep.to(new.device), flat_target, new)
            return new.reshape(target.shape)

        def read_input(x: Tensor, hook) -> None:
            inputs[:] = [x.reshape(*x.shape[:2], -1)]

        hooks = [(cfg.hook_name_out, replace)] if cfg.is_transcoder else [(cfg.hook_name, replace)]
        if cfg.is_transcoder:
            hooks.insert(0, (cfg.hook_name, read_input))
        with model.hooks(fwd=hooks):
            yield model
