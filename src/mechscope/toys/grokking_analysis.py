"""How a grokked model adds: key Fourier frequencies and progress measures (Nanda et al. 2023).

The model computes ``(a + b) mod p`` by rotation: it embeds ``a`` and ``b`` as
``cos(w a)``, ``sin(w a)`` for a few *key frequencies* ``w = 2πk/p``, combines them into
``cos(w(a + b))`` and ``sin(w(a + b))`` in its MLP, and reads logits
``Σ_k α_k cos(w_k(a + b − c))``, largest at ``c = a + b``::

    from mechscope.toys.grokking_analysis import analyse_grokking

    analysis = analyse_grokking(run)            # run = train_grokking(...)
    analysis.key_frequencies                    # e.g. (14, 35, 41, 42, 52) for Nanda et al.'s seed
    analysis.variance_explained                 # share of the logits' variance the cos terms explain
    analysis.phases                             # epochs where memorisation and circuit formation end ...
    analysis.plot()

**Key frequencies** are read from the embedding: its rows projected on the Fourier
basis of ``Z_p``, each frequency's share of the squared norm; the key ones stand out
above the rest (:func:`key_frequencies`).

**Progress measures** over the kept weight snapshots, for the key frequencies of the
final model. For each answer ``c`` the logits are a function of the pair ``(a, b)``; the
functions ``cos(w_k(a + b))`` and ``sin(w_k(a + b))`` (orthogonal over the ``p²`` pairs)
span what the algorithm uses. The **restricted loss** keeps only that span (plus each
answer's mean) and is measured on every pair; the **excluded loss** removes it and is
measured on the training pairs. Memorisation leaves the excluded loss as low as the
training loss; as the circuit forms, removing it hurts more and more (the excluded loss
rises) while the restricted loss falls, all while the test loss stays high; clean-up
then removes the memorising components and the test loss falls (Nanda et al., fig. 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from mechscope.hooks.hooked_model import HookedModel
from mechscope.results import Result
from mechscope.toys.grokking import GrokkingTraining, ModularData, fast_answer_logits

KEY_SHARE_RATIO = 0.15
"""A frequency is key when its share of the embedding's Fourier norm is at least this
fraction of the largest share (with a trained model's sparse embedding the gap between
key and other frequencies is an order of magnitude; see :func:`key_frequencies`)."""


def fourier_basis(p: int) -> tuple[Float[Tensor, "2k p"], list[int]]:
    """Orthonormal ``cos``/``sin`` rows of frequencies ``1 .. (p-1)/2`` over ``0 .. p-1``, and each row's frequency."""
    x = torch.arange(p, dtype=torch.float64)
    rows, freqs = [], []
    for k in range(1, (p - 1) // 2 + 1):
        for fn in (torch.cos, torch.sin):
            row = fn(2 * math.pi * k * x / p)
            rows.append(row / row.norm())
            freqs.append(k)
    return torch.stack(rows), freqs


def embedding_fourier_shares(model: HookedModel, p: int) -> Float[Tensor, "freq"]:
    """Share of the (mean-centred) number embeddings' squared norm in each frequency ``1 .. (p-1)/2``."""
    basis, freqs = fourier_basis(p)
    embed = model.hf_model.transformer.wte.weight[:p].detach().double()
    coefficients = basis @ (embed - embed.mean(0))  # (2k, d_model)
    per_row = (coefficients**2).sum(-1)
    shares = per_row.view(-1, 2).sum(-1)
    return (shares / shares.sum()).float()


def key_frequencies(shares: Float[Tensor, "freq"], ratio: float = KEY_SHARE_RATIO) -> tuple[int, ...]:
    """Frequencies (1-based) whose share is at least ``ratio`` times the largest, largest first."""
    order = shares.argsort(descending=True).tolist()
    return tuple(i + 1 for i in order if shares[i] >= ratio * shares.max())


def all_logits(model: HookedModel, data: ModularData) -> Float[Tensor, "a b c"]:
    """Logits over the answers for every pair, as a (p, p, p) grid."""
    with torch.no_grad():
        return fast_answer_logits(model, data.inputs).double().view(data.p, data.p, data.p)


def key_projection(logits: Float[Tensor, "a b c"], keys: tuple[int, ...]) -> Float[Tensor, "a b c"]:
    """The part of the logits in the span of ``cos(w_k(a + b))``, ``sin(w_k(a + b))`` (per answer ``c``)."""
    p = logits.shape[0]
    s = (torch.arange(p).unsqueeze(1) + torch.arange(p)).double()  # a + b
    projection = torch.zeros_like(logits)
    for k in keys:
        for fn in (torch.cos, torch.sin):
            direction = fn(2 * math.pi * k * s / p)  # (a, b), squared norm p²/2
            coefficient = torch.einsum("ab,abc->c", direction, logits) / (p * p / 2)
            projection += direction.unsqueeze(-1) * coefficient
    return projection


def restricted_and_excluded(logits: Float[Tensor, "a b c"], keys: tuple[int, ...],
                            data: ModularData) -> tuple[float, float]:
    """(restricted loss on every pair, excluded loss on the training pairs), in nats."""
    projected = key_projection(logits, keys)
    restricted = projected + logits.mean(dim=(0, 1), keepdim=True)
    excluded = logits - projected
    labels = data.labels
    flat = lambda t: t.reshape(-1, data.p)  # noqa: E731 - row a * p + b, as in data
    loss_r = torch.nn.functional.cross_entropy(flat(restricted), labels)
    loss_e = torch.nn.functional.cross_entropy(flat(excluded)[data.is_train], labels[data.is_train])
    return loss_r.item(), loss_e.item()


def cos_term_fit(logits: Float[Tensor, "a b c"], keys: tuple[int, ...]) -> tuple[float, dict[int, float]]:
    """How much of the logits' variance ``Σ_k α_k cos(w_k(a + b − c))`` explains, and each α_k.

    The logits are centred over the answers (a constant per pair changes no probability)
    and over the pairs (a bias per answer, the same for every input, is no part of the
    addition); every cos term is orthogonal to both, and to the others, so each α_k is
    one projection.
    """
    p = logits.shape[0]
    centred = logits - logits.mean(-1, keepdim=True)
    centred = centred - centred.mean(dim=(0, 1), keepdim=True)
    idx = torch.arange(p)
    phase = (idx.view(-1, 1, 1) + idx.view(1, -1, 1) - idx.view(1, 1, -1)).double()
    explained, alphas = 0.0, {}
    for k in keys:
        term = torch.cos(2 * math.pi * k * phase / p)
        alpha = float((term * centred).sum() / (term**2).sum())
        alphas[k] = alpha
        explained += alpha**2 * float((term**2).sum())
    return explained / float((centred**2).sum()), alphas


def logit_shares(logits: Float[Tensor, "a b c"]) -> Float[Tensor, "freq"]:
    """Share of the (answer-centred) logits' variance that each frequency's ``cos(w_k(a + b − c))`` explains."""
    p = logits.shape[0]
    return torch.tensor([cos_term_fit(logits, (k,))[0] for k in range(1, (p - 1) // 2 + 1)])


PHASE_TEST_LOSS_DROP = 0.8
"""Clean-up starts when the test loss falls below this share of its peak after memorisation."""


@dataclass(frozen=True)
class GrokkingAnalysis(Result):
    """Key frequencies, the logits' Fourier structure and the progress measures of a grokking run."""

    p: int
    """The modulus."""
    key_frequencies: tuple[int, ...]
    """Frequencies ``k`` (``w = 2πk/p``) the embedding concentrates on, largest share first."""
    embedding_shares: Float[Tensor, "freq"]
    """Share of the embedding's squared norm per frequency ``1 .. (p-1)/2``."""
    logit_shares: Float[Tensor, "freq"]
    """Share of the logits' variance each frequency's ``cos(w_k(a + b − c))`` explains."""
    variance_explained: float
    """Share of the final logits' variance (centred over answers and over pairs) that ``Σ_k α_k cos(w_k(a + b − c))``
    over the key frequencies explains."""
    variance_explained_control: float
    """The same for as many of the best *other* frequencies (the control)."""
    alphas: dict[int, float]
    """``α_k`` per key frequency."""
    epochs: tuple[int, ...]
    """Epochs of the weight snapshots."""
    restricted_loss: tuple[float, ...]
    """Per snapshot: loss on every pair with the logits restricted to the key frequencies' span."""
    excluded_loss: tuple[float, ...]
    """Per snapshot: loss on the training pairs with that span removed."""
    train_loss: tuple[float, ...]
    """Per snapshot: training loss."""
    test_loss: tuple[float, ...]
    """Per snapshot: test loss."""
    history: dict[str, list[float]]
    """The training history (train/test loss and accuracy, weight norm per evaluation)."""
    memorised_at: int | None
    """First evaluated epoch with training accuracy ≥ 0.999: memorisation ends."""
    cleanup_start: int | None
    """First evaluated epoch after the test loss's post-memorisation peak at which it is below
    ``PHASE_TEST_LOSS_DROP`` of that peak: circuit formation ends, clean-up begins."""
    generalised_at: int | None
    """First evaluated epoch with test accuracy ≥ 0.99: clean-up ends (grokked)."""
    final_test_accuracy: float
    """Test accuracy at the end."""

    def plot(self) -> Figure:
        from matplotlib.figure import Figure as Fig

        fig = Fig(figsize=(12, 8))
        (ax1, ax2), (ax3, ax4) = fig.subplots(2, 2)
        h = self.history
        ax1.plot(h["eval_step"], h["eval_train_loss"], label="train")
        ax1.plot(h["eval_step"], h["test_loss"], label="test")
        ax1.set_yscale("log"), ax1.set_xlabel("epoch"), ax1.set_ylabel("loss (nats)")
        ax1.set_title(f"modular addition, p = {self.p}: train and test loss")
        self._shade(ax1)
        acc = ax1.twinx()
        acc.plot(h["eval_step"], h["test_acc"], color="tab:green", lw=0.8, alpha=0.6, label="test accuracy")
        acc.set_ylabel("test accuracy"), acc.set_ylim(0, 1.05)
        ax1.legend(loc="lower left", fontsize=8), acc.legend(loc="center right", fontsize=8)
        freqs = np.arange(1, len(self.embedding_shares) + 1)
        colours = ["tab:red" if k in self.key_frequencies else "tab:grey" for k in freqs]
        ax2.bar(freqs, self.embedding_shares.numpy(), color=colours)
        ax2.set_xlabel("frequency k"), ax2.set_ylabel("share of embedding norm²")
        ax2.set_title(f"embedding in the Fourier basis: key k = {', '.join(map(str, sorted(self.key_frequencies)))}")
        ax3.plot(self.epochs, self.train_loss, label="train")
        ax3.plot(self.epochs, self.test_loss, label="test")
        ax3.plot(self.epochs, self.restricted_loss, label="restricted (key frequencies only)")
        ax3.plot(self.epochs, self.excluded_loss, label="excluded (train, key frequencies removed)")
        ax3.set_yscale("log"), ax3.set_xlabel("epoch"), ax3.set_ylabel("loss (nats)")
        ax3.set_title("progress measures")
        self._shade(ax3)
        norm = ax3.twinx()
        norm.plot(h["eval_step"], h["weight_norm"], color="black", lw=0.8, ls=":", label="Σ weights²")
        norm.set_ylabel("sum of squared weights")
        ax3.legend(loc="lower left", fontsize=7), norm.legend(loc="upper right", fontsize=7)
        ax4.bar(freqs, self.logit_shares.numpy(), color=colours)
        ax4.set_xlabel("frequency k"), ax4.set_ylabel("share of logit variance")
        ax4.set_title(f"logits ≈ Σ_k α_k cos(w_k(a+b−c)): key k explain {self.variance_explained:.1%}")
        fig.tight_layout()
        return fig

    def _shade(self, ax) -> None:
        """Mark memorisation | circuit formation | clean-up (named in the legend)."""
        bounds = [0, self.memorised_at, self.cleanup_start, self.generalised_at]
        names = ("memorisation", "circuit formation", "clean-up")
        for (start, end), name, colour in zip(zip(bounds, bounds[1:]), names, ("#fde0c5", "#d5e8d4", "#dae8fc")):
            if start is not None and end is not None and end > start:
                ax.axvspan(start, end, color=colour, alpha=0.6, lw=0, label=name)


def grokking_phases(history: dict[str, list[float]]) -> tuple[int | None, int | None, int | None]:
    """(memorised_at, cleanup_start, generalised_at) read from the training history."""
    steps = [int(s) for s in history["eval_step"]]
    first = lambda cond: next((s for s, ok in zip(steps, cond) if ok), None)  # noqa: E731
    memorised = first(a >= 0.999 for a in history["train_acc"])
    generalised = first(a >= 0.99 for a in history["test_acc"])
    cleanup = None
    if memorised is not None:
        after = [(s, loss) for s, loss in zip(steps, history["test_loss"]) if s >= memorised]
        peak_at = max(range(len(after)), key=lambda i: after[i][1])
        peak = after[peak_at][1]
        cleanup = next((s for s, loss in after[peak_at:] if loss < PHASE_TEST_LOSS_DROP * peak), None)
    return memorised, cleanup, generalised


def analyse_grokking(run: GrokkingTraining, *, progress: bool = True) -> GrokkingAnalysis:
    """Key frequencies, the cos-term fit of the final logits, and progress measures over the snapshots."""
    from tqdm.auto import tqdm

    data, p = run.data, run.config.p
    shares = embedding_fourier_shares(run.model, p)
    keys = key_frequencies(shares)
    logits = all_logits(run.model, data)
    explained, alphas = cos_term_fit(logits, keys)
    per_freq = logit_shares(logits)
    others = [k for k in per_freq.argsort(descending=True).add(1).tolist() if k not in keys][: len(keys)]
    control, _ = cos_term_fit(logits, tuple(others))
    epochs, restricted, excluded, train, test = [], [], [], [], []
    for epoch, model in tqdm(run.snapshot_models(), desc="progress measures", disable=not progress):
        snapshot_logits = all_logits(model, data)
        r, e = restricted_and_excluded(snapshot_logits, keys, data)
        flat = snapshot_logits.reshape(-1, p)
        epochs.append(epoch), restricted.append(r), excluded.append(e)
        train.append(torch.nn.functional.cross_entropy(flat[data.is_train], data.labels[data.is_train]).item())
        test.append(torch.nn.functional.cross_entropy(flat[~data.is_train], data.labels[~data.is_train]).item())
    memorised, cleanup, generalised = grokking_phases(run.history)
    return GrokkingAnalysis(
        p=p, key_frequencies=keys, embedding_shares=shares, logit_shares=per_freq, variance_explained=explained,
        variance_explained_control=control, alphas=alphas, epochs=tuple(epochs), restricted_loss=tuple(restricted),
        excluded_loss=tuple(excluded), train_loss=tuple(train), test_loss=tuple(test), history=run.history,
        memorised_at=memorised, cleanup_start=cleanup, generalised_at=generalised,
        final_test_accuracy=run.history["test_acc"][-1])
