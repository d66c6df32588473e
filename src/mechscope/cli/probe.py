"""``mechscope probe MODEL --data NAME|FILE``: linear probes at every layer, with controls.

    mechscope probe smollm2-135m --data sva-number                   # every layer's resid_post
    mechscope probe smollm2-135m --data cities.jsonl --layers 4,8,12 --k 5
    mechscope probe smollm2-135m --data country-city --sae sae/      # + SAEBench's sparse-probing table

Each layer's probe is fitted on the real labels, on Hewitt & Liang's control task and on
shuffled labels; the table shows all three, selectivity and chance. ``--sae DIR`` adds
full and top-k probes on the SAE's latents beside the residual channels at its hook point.

Writes, under ``--out``: ``probe-DATA-MODEL-HASH.json`` and ``.png`` (the layer sweep) and,
with ``--sae``, ``sparse-probing-DATA-MODEL-HASH.json`` and ``.png``; the hash covers the
data file's or SAE's contents and every option that changes the numbers, and each JSON
lists them under ``options``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    check_at_least,
    check_out_dir,
    check_store,
    clean_errors,
    files_digest,
    model_argument,
    no_cache_option,
    no_store_option,
    out,
    out_option,
    output_stem,
    parse_numbers,
    recorded,
    store_option,
    write_outputs,
)


def register(app: typer.Typer) -> None:
    """Add ``probe`` to ``app``."""
    app.command("probe")(probe)


@clean_errors
def probe(
    model: str = model_argument(),
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
    out_dir: Path = out_option(),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    store: Path | None = store_option(),
    no_store: bool = no_store_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Probe a property at every layer, with control task, shuffled labels and selectivity."""
    from mechscope.models import load_model
    from mechscope.probes import DATASETS, ProbeConfig, make_probe_data, probe_layers

    # Every option and output location first, so a typo never waits for a model to load.
    chosen_layers = None if layers.strip() == "all" else parse_numbers("--layers", layers)
    ks = parse_numbers("--sae-k", sae_k)
    check_at_least(("-n", n, 4), ("--k", k, 1), *(("--sae-k", value, 1) for value in ks))
    check_out_dir(out_dir)
    check_store(store, no_store=no_store, no_cache=no_cache)
    config = ProbeConfig(kind=kind, seed=seed)
    builtin = data in DATASETS
    dataset = None if builtin else make_probe_data(data, None)  # a file: read before the model loads
    sae = _load_sae(sae_dir) if sae_dir is not None else None
    options = {"model": model, "data": data, "data_files": None if builtin else files_digest(Path(data)),
               "n": n if builtin else None, "layers": chosen_layers, "site": site, "seed": seed, "kind": kind, "k": k,
               "sae": None if sae_dir is None else str(sae_dir),
               "sae_files": None if sae_dir is None else files_digest(sae_dir), "sae_k": ks if sae_dir else None}

    hooked = load_model(model)
    with recorded(store, no_store, command="probe", model=hooked, options=options, no_cache=no_cache) as run:
        if dataset is None:
            dataset = make_probe_data(data, hooked, n=n, seed=seed)
        sweep = run.stage("probe sweep", lambda: probe_layers(hooked, dataset, layers=chosen_layers, site=site,
                                                              config=config, k=k, progress=progress))
        _print_sweep(model, sweep)
        run.summary.update(best=sweep.best.hook_name, test_score=sweep.best.test_score,
                           selectivity=sweep.best.selectivity)
        write_outputs(sweep, sweep.plot(), out_dir, output_stem("probe", dataset.name, model, options=options),
                      options=options, recorder=run)
        if sae is not None:
            from mechscope.probes import sparse_probing

            table = run.stage("sparse probing", lambda: sparse_probing(
                hooked, [dataset], sae=sae, ks=ks, config=config,
                sae_name=f"{sae_dir} ({sae.cfg.architecture}, {sae.cfg.d_sae} latents)"))
            out.print(escape(table.to_markdown()))
            write_outputs(table, table.plot(), out_dir, output_stem("sparse-probing", dataset.name, model,
                                                                    options=options), options=options, recorder=run)


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
