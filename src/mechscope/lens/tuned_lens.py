"""The tuned lens (Belrose et al. 2023): one learned affine translator per layer.

The logit lens decodes block ``l``'s input residual as if it were the final residual.
Early residuals live in a different basis, so it reads them badly. The tuned lens first
maps each residual into the final residual's basis with an affine *translator*, trained
so the decoded distribution matches the model's own output (minimising KL(final ‖ lens))::

    lens = train_tuned_lens(model, texts, config=TunedLensConfig(token_budget=50_000))
    logits = lens.apply(cache["resid_pre", 5], layer=5)   # unembed(h + A₅h + b₅)
    lens.save("lenses/smollm2")
    lens = TunedLens.load("lenses/smollm2", model)         # refuses a different model

As in the paper a translator is ``h ↦ h + A h + b`` with ``A`` and ``b`` initialised at
zero, so an untrained tuned lens *is* the logit lens, and weight decay pulls it back
toward the identity. Layer ``n_layers`` (the final residual) has no translator: the
lens there is the model's own output.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from mechscope.errors import InputError
from mechscope.lens.readout import unembed
from mechscope.results import write_json

if TYPE_CHECKING:
    from mechscope.hooks.hooked_model import HookedModel

WEIGHTS_FILE = "tuned_lens.safetensors"
CONFIG_FILE = "tuned_lens.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class LensModelInfo:
    """Which model a tuned lens belongs to: its shape and a fingerprint of its weights."""

    model_name: str
    """How the model was asked for when the lens was trained (for messages)."""
    family: str
    """Adapter family (``llama``, ``gpt2`` …)."""
    n_layers: int
    """Number of blocks: one translator each."""
    d_model: int
    """Width of the residual stream the translators map."""
    d_vocab: int
    """Vocabulary size of the unembedding."""
    fingerprint: tuple[float, ...]
    """A few weights sampled from the unembedding and every norm: two models with the
    same shape but different weights (another checkpoint) differ here."""

    @classmethod
    def of(cls, model: HookedModel) -> LensModelInfo:
        cfg = model.cfg
        return cls(
            model_name=model.name, family=cfg.family, n_layers=cfg.n_layers, d_model=cfg.d_model,
            d_vocab=cfg.d_vocab, fingerprint=_fingerprint(model),
        )

    def mismatch(self, other: LensModelInfo) -> str | None:
        """Why a lens made for ``self`` cannot be used on ``other`` (None if it can)."""
        for field in ("n_layers", "d_model", "d_vocab"):
            if getattr(self, field) != getattr(other, field):
                return f"{field} {getattr(self, field)} (lens) vs {getattr(other, field)} (model)"
        mine, theirs = torch.tensor(self.fingerprint), torch.tensor(other.fingerprint)
        # Loose tolerance: the same weights cast to bfloat16 or moved to a GPU still match.
        if mine.shape != theirs.shape or not torch.allclose(mine, theirs, rtol=1e-2, atol=1e-3):
            return "same shape but different weights (another checkpoint or model)"
        return None


def _fingerprint(model: HookedModel) -> tuple[float, ...]:
    adapter = model.adapter
    w_u = model.W_U.detach().float().flatten()
    picks = [w_u[:: max(1, w_u.numel() // 64)][:64]]
    picks.append(adapter.norm_weight(adapter.norm(None, "ln_final")).detach().float()[:16])
    for layer in range(model.cfg.n_layers):
        picks.append(adapter.norm_weight(adapter.norm(layer, "ln1")).detach().float()[:4])
    return tuple(round(float(v), 6) for v in torch.cat([p.cpu() for p in picks]))


class TunedLens(nn.Module):
    """Affine translators ``h ↦ h + A_l h + b_l``, one per block, for one model.

    ``TunedLens(model)`` is the identity lens (equal to the logit lens); train it with
    :func:`train_tuned_lens`. The model is kept by reference, not as a submodule, so
    ``lens.parameters()`` are the translators only.
    """

    def __init__(self, model: HookedModel, *, training_info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        """The model whose residuals the lens reads and whose unembedding it uses."""
        self.info = LensModelInfo.of(model)
        """Which model the lens was made for (checked on load)."""
        self.training_info: dict[str, Any] = dict(training_info or {})
        """How it was trained (config, tokens seen, final loss); saved with the weights."""
        d_model = model.cfg.d_model
        self.translators = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(model.cfg.n_layers))
        """``translators[l]`` maps the residual before block ``l`` to a correction A_l h + b_l."""
        for linear in self.translators:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.to(model.device)

    @property
    def n_layers(self) -> int:
        return len(self.translators)

    def translate(self, resid: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_model"]:
        """Map block ``layer``'s input residual into the final residual's basis."""
        self._check_layer(layer)
        if layer == self.n_layers:  # the final residual: the model's own output
            return resid
        hidden = resid.float()  # translators stay float32 whatever the model's dtype
        return (hidden + self.translators[layer](hidden)).to(resid.dtype)

    def apply(self, resid: Float[Tensor, "... d_model"], layer: int) -> Float[Tensor, "... d_vocab"]:
        """Logits the tuned lens reads from the residual before block ``layer``
        (``layer == n_layers``: the final residual, decoded as the model does).

        This shadows ``nn.Module.apply(fn)``; to run a function over the translators use
        ``lens.translators.apply(fn)``."""
        return unembed(self.model, self.translate(resid, layer))

    forward = apply

    def _check_layer(self, layer: int) -> None:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= self.n_layers:
            raise InputError(
                f"layer must be an int in 0..{self.n_layers} (the residual before block l; {self.n_layers} "
                f"is the final residual); received {layer!r}"
            )

    # ------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write ``tuned_lens.safetensors`` (translators) and ``tuned_lens.json`` (model
        info, training info) into ``directory``; returns the directory. Both are written
        into a temporary directory first, so a failed save never leaves a weights file
        next to another lens's config."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tuned-lens-", dir=directory))
        try:
            weights = {name: t.detach().cpu().contiguous() for name, t in self.state_dict().items()}
            save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "mechscope-tuned-lens"})
            meta = {"format_version": FORMAT_VERSION, "model": asdict(self.info), "training": self.training_info}
            write_json(tmp / CONFIG_FILE, meta)
            # the config goes last: a lens is loadable only once its config names it
            (tmp / WEIGHTS_FILE).replace(directory / WEIGHTS_FILE)
            (tmp / CONFIG_FILE).replace(directory / CONFIG_FILE)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, model: HookedModel) -> TunedLens:
        """Read a lens saved by :meth:`save`, refusing one trained for another model."""
        directory = Path(directory)
        config, weights = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        if not config.is_file() or not weights.is_file():
            raise InputError(
                f"no tuned lens in {directory}: expected {CONFIG_FILE} and {WEIGHTS_FILE} there. "
                "Train one with train_tuned_lens(model, texts).save(DIR), "
                "or run python benchmarks/tuned_lens.py --save-lens DIR"
            )
        try:
            meta = json.loads(config.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{config} is not a readable tuned-lens config ({error}); save the lens again") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise InputError(
                f"{config} has format_version {version!r}; this mechscope reads "
                f"{FORMAT_VERSION}. Retrain the lens with this version"
            )
        try:
            saved = meta["model"]
            saved = LensModelInfo(**{**saved, "fingerprint": tuple(saved["fingerprint"])})
        except (KeyError, TypeError) as error:
            raise InputError(f"{config} does not describe the lens's model ({error}); save the lens again") from None
        lens = cls(model, training_info=meta.get("training"))
        why = saved.mismatch(lens.info)
        if why is not None:
            raise InputError(
                f"the tuned lens in {directory} was trained for {saved.model_name} ({saved.family}, "
                f"{saved.n_layers} layers, d_model {saved.d_model}), not for {model.name} ({lens.info.family}, "
                f"{lens.info.n_layers} layers, d_model {lens.info.d_model}): {why}. "
                f"Load it with the model it was trained for, or train a lens for {model.name}"
            )
        try:
            lens.load_state_dict(load_file(str(weights), device=str(model.device)), strict=True)
        except (OSError, RuntimeError, SafetensorError) as error:
            raise InputError(f"{weights} does not hold this lens's translators ({error}); save the lens again") from None
        return lens

    def check_model(self, model: HookedModel) -> None:
        """Refuse to decode ``model``'s residuals with a lens made for another model."""
        if model is self.model:
            return
        why = self.info.mismatch(LensModelInfo.of(model))
        if why is not None:
            raise InputError(
                f"this tuned lens belongs to {self.info.model_name}, not {model.name}: {why}. "
                f"Use a lens trained for {model.name}"
            )
