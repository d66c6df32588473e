"""How good is a sparse dictionary? Reconstruction, sparsity, and what splicing it in costs.

    ev = evaluate_sae(model, sae, default_texts(), n_tokens=4096)   # held-out rows
    ev.l0, ev.fvu, ev.ce_recovered_zero, ev.kl_spliced, ev.dead_fraction

The metrics SAELens, sparsify and SAEBench report, computed over the same tokens:

* reconstruction (of the point the SAE replaces: its input, or a transcoder's target),
  over real tokens, BOS left out by default: L0, L1, MSE, FVU and explained variance,
  cosine similarity, input and output norms, the L2 ratio and the relative
  reconstruction bias (shrinkage);
* downstream, with the model's next-token loss on every prediction of every row:
  clean, with the SAE spliced in, and with the point zero- or mean-ablated; the loss
  recovered against each ablation, the loss increase, and KL(clean ‖ run) per token;
* latent statistics: each latent's firing frequency, the dead fraction (never fired on
  these tokens) and the dense fraction (fired on more than ``dense_threshold`` of them).

The mean used by mean ablation is the point's mean over the same evaluated tokens, so
the activations are read in a first pass and the losses measured in a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from mechscope.activations.collect import keep_mask
from mechscope.results import Result
from mechscope.sae.eval_data import Data, collect_batches
from mechscope.sae.splice import bos_mask, check_sae_fits, inference_mode, spliced, tracked_inputs


@dataclass(frozen=True)
class SAEEvaluation(Result):
    """An SAE's reconstruction, sparsity and downstream-loss metrics on held-out tokens."""

    model_name: str
    """The model the SAE was spliced into."""
    hook_name: str
    """Where the SAE reads."""
    hook_name_out: str | None
    """Transcoders: the point it predicts (and that splicing and ablation replace)."""
    n_tokens: int
    """Tokens the reconstruction and latent metrics average over (real tokens; BOS left out if ``skip_bos``)."""
    n_predictions: int
    """Next-token predictions the losses and KLs average over."""
    skip_bos: bool
    """Whether BOS positions were left out of the metrics and left unchanged by splicing and ablation."""
    l0: float
    """Mean number of non-zero latents per token."""
    l1: float
    """Mean sum of latent activations per token."""
    mse: float
    """Mean squared error per element: mean over tokens and dimensions of (x_hat - x)^2."""
    fvu: float
    """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the tokens."""
    explained_variance: float
    """1 - fvu."""
    cosine_similarity: float
    """Mean over tokens of cos(x, x_hat)."""
    l2_norm_in: float
    """Mean ||x||."""
    l2_norm_out: float
    """Mean ||x_hat||."""
    l2_ratio: float
    """Shrinkage: mean over tokens of ||x_hat|| / ||x|| (1 = none, below 1 = shrunk)."""
    relative_reconstruction_bias: float
    """E ||x_hat||^2 / E (x . x_hat) (Rajamanoharan et al. 2024, eq. 10): the best rescaling's
    inverse; below 1 means shrinkage."""
    ce_clean: float
    """The model's mean next-token cross-entropy (nats)."""
    ce_spliced: float
    """Mean cross-entropy with the SAE spliced in (no error term)."""
    ce_zero_ablated: float
    """Mean cross-entropy with the point set to zero."""
    ce_mean_ablated: float
    """Mean cross-entropy with the point set to its mean over the evaluated tokens."""
    ce_recovered_zero: float
    """(ce_zero_ablated - ce_spliced) / (ce_zero_ablated - ce_clean): 1 = the SAE loses nothing."""
    ce_recovered_mean: float
    """(ce_mean_ablated - ce_spliced) / (ce_mean_ablated - ce_clean)."""
    ce_increase: float
    """Downstream loss increase: ce_spliced - ce_clean (sparsify's and Gao et al.'s delta LM loss)."""
    kl_spliced: float
    """Mean per-token KL(clean ‖ spliced) of the next-token distributions (nats)."""
    kl_zero_ablated: float
    """Mean per-token KL(clean ‖ zero-ablated)."""
    kl_mean_ablated: float
    """Mean per-token KL(clean ‖ mean-ablated)."""
    dead_fraction: float
    """Fraction of latents that never fired on the evaluated tokens."""
    dense_fraction: float
    """Fraction of latents that fired on more than ``dense_threshold`` of the tokens."""
    dense_threshold: float
    """Firing frequency above which a latent counts as dense."""
    density: Float[Tensor, "d_sae"]
    """Each latent's firing frequency over the evaluated tokens."""

    def summary(self) -> dict[str, float]:
        """The scalar metrics, by name (for printing and logging)."""
        skip = {"model_name", "hook_name", "hook_name_out", "density", "skip_bos"}
        return {k: v for k, v in self.to_dict().items() if k not in skip and k != "type"}


def evaluate_sae(
    model,
    sae,
    data: Data,
    *,
    n_tokens: int = 4096,
    seq_len: int = 128,
    batch_size: int = 8,
    split: str = "heldout",
    skip_bos: bool = True,
    dense_threshold: float = 0.1,
    progress: bool = True,
) -> SAEEvaluation:
    """Evaluate ``sae`` on about ``n_tokens`` tokens of ``data`` (text is packed into rows of
    ``seq_len`` tokens from the ``split`` part of the corpus: held out by default)."""
    check_sae_fits(model, sae)
    batches = collect_batches(model, data, n_tokens=n_tokens, seq_len=seq_len, batch_size=batch_size, split=split)
    bar = tqdm(total=2 * len(batches), desc="sae eval", unit="batch", disable=not progress)
    with torch.no_grad(), inference_mode(sae):
        recon = _Reconstruction(sae.cfg.d_sae)
        for batch in batches:
            recon.add(*_read(model, sae, batch, skip_bos))
            bar.update()
        mean = (recon.sum_x / max(recon.n, 1)).float()
        losses = _Losses()
        for batch in batches:
            losses.add(model, sae, batch, mean, skip_bos)
            bar.update()
    bar.close()
    return SAEEvaluation(
        model_name=model.name,
        hook_name=sae.cfg.hook_name,
        hook_name_out=sae.cfg.hook_name_out,
        skip_bos=skip_bos,
        **recon.metrics(dense_threshold),
        **losses.metrics(),
    )


def _read(model, sae, batch, skip_bos: bool) -> tuple[Tensor, Tensor, Tensor]:
    """This batch's counted tokens: target activations, reconstructions, latents (rows = tokens)."""
    cfg = sae.cfg
    names = [cfg.hook_name] + ([cfg.hook_name_out] if cfg.is_transcoder else [])
    _, cache = model.run_with_cache(batch, names=names)
    x = cache[cfg.hook_name].flatten(2)
    target = cache[cfg.hook_name_out].flatten(2) if cfg.is_transcoder else x
    mask = keep_mask(model, batch, exclude_bos=skip_bos)
    device = next(sae.parameters()).device
    out = sae(x[mask].to(device))
    return target[mask].to(device).double(), out.output.double(), out.latents


class _Reconstruction:
    """Running sums (float64) of the reconstruction and latent metrics."""

    def __init__(self, d_sae: int) -> None:
        self.n = 0
        self.sums: dict[str, float] = dict.fromkeys(
            ("sq_err", "x2", "cos", "norm_in", "norm_out", "ratio", "xh2", "dot", "l0", "l1"), 0.0)
        self.sum_x: Tensor | None = None
        self.fires = torch.zeros(d_sae, dtype=torch.float64)

    def add(self, x: Tensor, x_hat: Tensor, latents: Tensor) -> None:
        norm_in, norm_out = x.norm(dim=-1), x_hat.norm(dim=-1)
        s = self.sums
        s["sq_err"] += float((x_hat - x).pow(2).sum())
        s["x2"] += float(x.pow(2).sum())
        s["cos"] += float(F.cosine_similarity(x, x_hat, dim=-1, eps=1e-12).sum())
        s["norm_in"] += float(norm_in.sum())
        s["norm_out"] += float(norm_out.sum())
        s["ratio"] += float((norm_out / norm_in.clamp(min=1e-12)).sum())
        s["xh2"] += float(x_hat.pow(2).sum())
        s["dot"] += float((x * x_hat).sum())
        fired = latents != 0
        s["l0"] += float(fired.sum())
        s["l1"] += float(latents.abs().sum())
        self.fires += fired.sum(0).double().cpu()
        self.sum_x = x.sum(0) if self.sum_x is None else self.sum_x + x.sum(0)
        self.n += x.shape[0]

    def metrics(self, dense_threshold: float) -> dict:
        n, s = max(self.n, 1), self.sums
        width = self.sum_x.shape[0] if self.sum_x is not None else 1
        total_var = s["x2"] - float(self.sum_x.pow(2).sum()) / n if self.sum_x is not None else 0.0
        fvu = s["sq_err"] / total_var if total_var > 0 else float("nan")
        density = (self.fires / n).float()
        return dict(
            n_tokens=self.n, l0=s["l0"] / n, l1=s["l1"] / n, mse=s["sq_err"] / (n * width), fvu=fvu,
            explained_variance=1.0 - fvu, cosine_similarity=s["cos"] / n, l2_norm_in=s["norm_in"] / n,
            l2_norm_out=s["norm_out"] / n, l2_ratio=s["ratio"] / n,
            relative_reconstruction_bias=s["xh2"] / s["dot"] if s["dot"] else float("nan"),
            dead_fraction=float((density == 0).float().mean()),
            dense_fraction=float((density > dense_threshold).float().mean()),
            dense_threshold=dense_threshold, density=density,
        )


class _Losses:
    """Running sums of next-token cross-entropy and KL(clean ‖ run) for each kind of run."""

    RUNS = ("clean", "spliced", "zero_ablated", "mean_ablated")

    def __init__(self) -> None:
        self.n = 0
        self.ce = dict.fromkeys(self.RUNS, 0.0)
        self.kl = dict.fromkeys(self.RUNS[1:], 0.0)

    def add(self, model, sae, batch, mean: Tensor, skip_bos: bool) -> None:
        predicted = (batch.attention_mask[:, :-1] * batch.attention_mask[:, 1:]).bool()
        targets = batch.ids[:, 1:][predicted]
        clean = model(batch)[:, :-1][predicted].float().log_softmax(-1)
        self.ce["clean"] += float(F.nll_loss(clean, targets, reduction="sum"))
        point = sae.cfg.hook_name_out if sae.cfg.is_transcoder else sae.cfg.hook_name
        for run in self.RUNS[1:]:
            if run == "spliced":
                with spliced(model, sae, skip_bos=skip_bos):
                    logits = model(batch)
            else:
                value = torch.zeros_like(mean) if run == "zero_ablated" else mean
                with _replaced(model, point, value, skip_bos):
                    logits = model(batch)
            logprobs = logits[:, :-1][predicted].float().log_softmax(-1)
            self.ce[run] += float(F.nll_loss(logprobs, targets, reduction="sum"))
            self.kl[run] += float(F.kl_div(logprobs, clean, log_target=True, reduction="sum"))
        self.n += int(targets.numel())

    def metrics(self) -> dict:
        n = max(self.n, 1)
        ce = {run: total / n for run, total in self.ce.items()}
        return dict(
            n_predictions=self.n, ce_clean=ce["clean"], ce_spliced=ce["spliced"],
            ce_zero_ablated=ce["zero_ablated"], ce_mean_ablated=ce["mean_ablated"],
            ce_recovered_zero=_recovered(ce["zero_ablated"], ce["spliced"], ce["clean"]),
            ce_recovered_mean=_recovered(ce["mean_ablated"], ce["spliced"], ce["clean"]),
            ce_increase=ce["spliced"] - ce["clean"],
            kl_spliced=self.kl["spliced"] / n, kl_zero_ablated=self.kl["zero_ablated"] / n,
            kl_mean_ablated=self.kl["mean_ablated"] / n,
        )


def _recovered(ablated: float, spliced_ce: float, clean: float) -> float:
    span = ablated - clean
    return (ablated - spliced_ce) / span if abs(span) > 1e-9 else float("nan")


@contextmanager
def _replaced(model, name: str, value: Float[Tensor, "d"], skip_bos: bool) -> Iterator:
    """Every position's activation at ``name`` set to ``value``; BOS positions are kept if
    ``skip_bos``, as splicing keeps them, so that ablation and splicing change the same tokens."""
    with tracked_inputs(model) as state:

        def replace(x: Tensor, hook) -> Tensor:
            new = value.to(x).expand(*x.shape[:2], -1)
            keep = bos_mask(model, state, x.shape) if skip_bos else None
            if keep is not None:
                new = torch.where(keep.to(x.device), x.flatten(2), new)
            return new.reshape(x.shape)

        with model.hooks(fwd=[(name, replace)]):
            yield model
