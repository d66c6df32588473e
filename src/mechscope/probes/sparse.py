"""Sparse probing of SAE latents against the residual channels, laid out as SAEBench does.

::

    table = sparse_probing(model, [make_probe_data(name, model, n=512) for name in names], sae=load_sae("sae/"))
    print(table.to_markdown())          # dataset × (full probe, top-1, top-2, top-5) for both
    table.plot().savefig("sparse_probing.png")

For each dataset, the examples are read at the SAE's hook point: the raw activation
(``resid``) and the SAE's latents (each token encoded, then pooled as the dataset's
positions say). Each is probed with all its inputs (the *full* probe) and with the top
``k`` inputs by class-mean difference (Gurnee et al.'s sparse probing; SAEBench's top-1,
top-2, top-5). A latent that alone separates the classes is a feature for that property;
a residual channel rarely is. Every cell is a :class:`~mechscope.probes.probe.ProbeResult`
with its controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mechscope.activations.positions import read_positions
from mechscope.errors import InputError
from mechscope.probes.data import ProbeData
from mechscope.probes.fit import ProbeConfig
from mechscope.probes.probe import ProbeResult, probe_features
from mechscope.results import Result


@dataclass(frozen=True)
class SparseProbingRow:
    """One dataset's probes on the residual channels and on the SAE's latents."""

    data: str
    """The dataset's name."""
    resid: tuple[ProbeResult, ...]
    """The full probe, then one per k, on the activation itself."""
    sae: tuple[ProbeResult, ...]
    """The full probe, then one per k, on the SAE's latents."""


@dataclass(frozen=True)
class SparseProbing(Result):
    """SAEBench's sparse-probing table: test accuracy of full and top-k probes."""

    hook_name: str
    """The SAE's hook point, where both were read."""
    sae: str
    """A description of the SAE (its architecture, width, where it was loaded from)."""
    ks: tuple[int, ...]
    """The sparse probes' input counts."""
    rows: tuple[SparseProbingRow, ...]
    """One row per dataset."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names: full, then top-k, for resid and for the SAE."""
        kinds = ("full", *(f"top-{k}" for k in self.ks))
        return tuple(f"{where} {kind}" for where in ("resid", "SAE") for kind in kinds)

    def scores(self) -> torch.Tensor:
        """Test scores, datasets × :attr:`columns`."""
        return torch.tensor([[r.test_score for r in (*row.resid, *row.sae)] for row in self.rows])

    def to_markdown(self) -> str:
        """The table as Markdown (test accuracy; the mean over datasets last)."""
        scores = self.scores()
        lines = ["| dataset | " + " | ".join(self.columns) + " |", "|---" * (len(self.columns) + 1) + "|"]
        for row, values in zip(self.rows, scores):
            lines.append(f"| {row.data} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
        lines.append("| **mean** | " + " | ".join(f"{v:.3f}" for v in scores.mean(0)) + " |")
        return "\n".join(lines)

    def plot(self):
        """Grouped bars: each dataset's full and top-k test accuracy, resid beside the SAE."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure

        scores = self.scores().numpy()
        names = [row.data for row in self.rows] + ["mean"]
        scores = list(scores) + [scores.mean(0)]
        fig = Figure(figsize=(max(7.0, 1.6 * len(names)), 4), layout="constrained")
        ax = fig.add_subplot()
        n_cols = len(self.columns)
        width = 0.8 / n_cols
        half = n_cols // 2
        for j, column in enumerate(self.columns):
            shade = 0.35 + 0.65 * (j % half) / max(half - 1, 1)
            color = colormaps["Blues" if j < half else "Oranges"](shade)
            ax.bar([i + (j - n_cols / 2 + 0.5) * width for i in range(len(names))], [s[j] for s in scores],
                   width, color=color, label=column)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0.4, 1.01)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"sparse probing at {self.hook_name}: residual channels vs SAE latents")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
        return fig


def sparse_probing(
    model, datasets: Sequence[ProbeData], *, sae, ks: Sequence[int] = (1, 2, 5), config: ProbeConfig = ProbeConfig(),
    batch_size: int = 32, sae_name: str = "",
) -> SparseProbing:
    """Full and top-k probes on the activation at ``sae``'s hook point and on its latents,
    for each classification dataset."""
    hook = sae.cfg.hook_name
    if hook is None:
        raise InputError("this SAE does not say which hook point it reads (cfg.hook_name is None); set it")
    if not datasets or any(not data.is_classification for data in datasets):
        raise InputError("sparse probing takes one or more classification datasets (regression targets have no "
                         "class means to rank inputs by)")
    ks = tuple(ks)
    rows = []
    d_in = sae.cfg.d_in

    def both(act: torch.Tensor) -> torch.Tensor:
        """The activation and its latents side by side: one forward pass reads both (pooling is per column)."""
        latents = sae.encode(act.to(sae.W_enc.device)).float()
        return torch.cat([act.float().to(latents.device), latents], -1)

    for data in datasets:
        with torch.no_grad():
            read = read_positions(model, hook, data.texts, data.positions, batch_size=batch_size, transform=both)
        types = data.types or read.tokens
        cells = {}
        for where, x in (("resid", read.acts[hook][:, :d_in]), ("sae", read.acts[hook][:, d_in:])):
            name = hook if where == "resid" else f"{hook} (SAE latents)"
            cells[where] = tuple(probe_features(x, data, types, hook_name=name, config=config, k=k)
                                 for k in (None, *ks))
        rows.append(SparseProbingRow(data=data.name, **cells))
    description = sae_name or f"{sae.cfg.architecture} SAE, {sae.cfg.d_sae} latents"
    return SparseProbing(hook_name=hook, sae=description, ks=ks, rows=tuple(rows))
