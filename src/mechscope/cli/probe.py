"""``mechscope probe MODEL --data NAME|FILE``: linear probes at every layer, with controls.

    mechscope probe smollm2-135m --data sva-number                   # every layer's resid_post
    mechscope probe smollm2-135m --data cities.jsonl --layers 4,8,12 --k 5
    mechscope probe smollm2-135m --data country-city --sae sae/      # + SAEBench's sparse-probing table

Each layer's probe is fitted on the real labels, on Hewitt & Liang's control task and on
shuffled labels; the table shows all three, selectivity and chance. ``--sae DIR`` adds
full and top-k probes on the SAE's latents beside the residual channels at its hook point.

Writes, under ``--out``: ``probe-<data>-<model>.json`` and ``.png`` (the layer sweep) and,
with ``--sae``, ``sparse-probing-<data>-<model>.json`` and ``.png``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import DEFAULT_OUT, clean_errors, out, parse_numbers, safe_stem, write_outputs
from mechscope.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``probe`` to ``app``."""
    app.command("probe")(probe)


@clean_errors
def probe(
    model: str = typer.Argument(..., help="Bundled name, local directory, .gguf file or hub id."),
    data: str = typer.Option(..., "--data", help="Built-in dataset (sva-number, ioi-order, country-city, "
                             "entity-kind, digit-token, number-value) or a .jsonl/.csv file."),
    layers: str = typer.Option("all", "--layers", help="Layers to probe: comma-separated, or all."),
    site: str = typer.Option("hook_resid_post", "--site", help="Hook point within each block."),
    n: int = typer.Option(512, "-n", help="Examples (built-in datasets)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the dataset, the split and the controls."),
    kind: str | None = typer.Option(None, "--kind", help="logistic or ridge (default: by the labels)."),
    k: int | None = typer.Option(None, "--k", help="Sparse probes: the top k inputs by class-mean difference."),
    sae_dir: Path | None = typer.Option(None, "--sae", help="An SAE directory: add the sparse-probing table."),
    sae_k: str = typer.Option("1,2,5", "--sae-k", help="The table's top-k columns."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for the JSON and PNG files."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Probe a property at every layer, with control task, shuffled labels and selectivity."""
    from mechscope.probes import DATASETS, ProbeConfig, make_probe_data, probe_layers

    # Cheap checks first, so a typo never waits for a model to load.
    chosen_layers = None if layers.strip() == "all" else parse_numbers("--layers", layers)
    ks = parse_numbers("--sae-k", sae_k)
    if n < 4:
        raise InputError(f"-n must be at least 4; received {n}")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a directory (it is created if missing)")
    config = ProbeConfig(kind=kind, seed=seed)
    dataset = None if data in DATASETS else make_probe_data(data, None)  # a file: read before the model loads
    sae = _load_sae(sae_dir) if sae_dir is not None else None

    from mechscope.models import load_model

    hooked = load_model(model)
    if dataset is None:
        dataset = make_probe_data(data, hooked, n=n, seed=seed)
    sweep = probe_layers(hooked, dataset, layers=chosen_layers, site=site, config=config, k=k, progress=progress)
    _print_sweep(model, sweep)
    stem = f"{safe_stem(dataset.name)}-{safe_stem(model)}"
    write_outputs(sweep, sweep.plot(), out_dir, f"probe-{stem}")
    if sae is not None:
        from mechscope.probes import sparse_probing

        table = sparse_probing(hooked, [dataset], sae=sae, ks=ks or (1, 2, 5), config=config,
                               sae_name=f"{sae_dir} ({sae.cfg.architecture}, {sae.cfg.d_sae} latents)")
        out.print(escape(table.to_markdown()))
        write_outputs(table, table.plot(), out_dir, f"sparse-probing-{stem}")


def _load_sae(directory: Path):
    from mechscope.sae import load_sae

    return load_sae(directory)


def _print_sweep(model: str, sweep) -> None:
    metric = sweep.results[0].metric
    table = Table("layer", f"test {metric}", "control task", "selectivity", "shuffled labels", "chance", "penalty",
                  title=f"{escape(sweep.data)} on {escape(model)} at blocks.L.{escape(sweep.site)}")
    for layer, r in zip(sweep.layers, sweep.results):
        table.add_row(str(layer), f"{r.test_score:.3f}", f"{r.control_score:.3f}", f"{r.selectivity:+.3f}",
                      f"{r.shuffled_score:.3f}", f"{r.chance:.3f}", f"{r.penalty:g}")
    out.print(table)
    best = sweep.best
    out.print(f"best: {escape(best.hook_name)}, test {metric} {best.test_score:.3f} "
              f"(control {best.control_score:.3f}, n_test {best.n_test})", soft_wrap=True)
