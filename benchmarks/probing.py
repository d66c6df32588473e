"""Linear probes on smollm2-135m: every layer, every built-in dataset, with their controls;
then the causal check of the subject-number direction on the agreement task.

    python benchmarks/probing.py            # 512 examples per dataset, all 30 layers
    python benchmarks/probing.py --quick    # 128 examples, 4 layers, 3 datasets

For each dataset of mechscope.probes.DATASETS, a probe per layer's resid_post (stratified
60/20/20 split, L2 penalty chosen on validation), each with Hewitt & Liang's control task,
a shuffled-label probe and chance. Then, for the subject's number (``sva-number``, read at
the last token), the probe's direction and the class-mean difference at several layers are
edited in the ``sva`` task's prompts: projected out (every prompt; the task's logit
difference should fall) and added on singular-subject prompts (the plural verb should
gain), each against 16 random directions. Writes ``benchmarks/results/probing[_quick].json``
and ``probing_layers[_quick].png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)

    from mechscope.models import load_model
    from mechscope.probes import DATASETS, make_probe_data, probe_layers

    model = load_model(a.model)
    n = 128 if a.quick else 512
    layers = [0, 6, 12, 18] if a.quick else list(range(model.cfg.n_layers))
    names = ["sva-number", "country-city", "number-value"] if a.quick else list(DATASETS)
    suffix = "_quick" if a.quick else ""
    report = {"model": a.model, "n": n, "layers": layers, "datasets": {}}
    sweeps = {}
    for name in names:
        started = time.perf_counter()
        data = make_probe_data(name, model, n=n, seed=0)
        sweep = probe_layers(model, data, layers=layers, progress=True)
        sweeps[name] = sweep
        best = sweep.best
        report["datasets"][name] = {"per_layer": [_row(r) for r in sweep.results], "best_layer": best.hook_name,
                                    "seconds": time.perf_counter() - started}
        print(f"{name:14s} best {best.hook_name}: test {best.test_score:.3f} control {best.control_score:.3f} "
              f"selectivity {best.selectivity:+.3f} shuffled {best.shuffled_score:.3f} chance {best.chance:.3f}")
    figure = RESULTS / f"probing_layers{suffix}.png"
    RESULTS.mkdir(exist_ok=True)
    _plot(sweeps).savefig(figure, dpi=110)
    report["figure"] = figure.name
    report["interventions"] = _interventions(model, [6, 12, 18] if a.quick else [6, 12, 18, 24], n)
    path = RESULTS / f"probing{suffix}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path} and {figure}")
    return 0


def _interventions(model, layers, n) -> list[dict]:
    """Probe and mean-difference directions of the subject's number, edited in the sva task."""
    from mechscope.activations.positions import read_positions
    from mechscope.probes import make_probe_data, probe_features, probe_intervention
    from mechscope.tasks import make_task

    data = make_probe_data("sva-number", model, n=n, seed=0)
    task = make_task("sva", model, n=32, seed=1)
    singular = task.subset(slice(0, None, 2))  # sva alternates singular and plural subjects, singular first
    names = [f"blocks.{layer}.hook_resid_post" for layer in layers]
    read = read_positions(model, names, data.texts, data.positions)
    rows = []
    for name in names:
        x = read.acts[name]
        mean_diff = x[data.labels == 1].mean(0) - x[data.labels == 0].mean(0)
        probe = probe_features(x, data, data.types, hook_name=name)
        for source, direction in (("probe", probe.direction), ("mean-diff", mean_diff)):
            ablate = probe_intervention(model, task, direction, hook_name=name, mode="ablate", n_random=16)
            add = probe_intervention(model, singular, direction, hook_name=name, mode="add",
                                     alpha=2 * float(mean_diff.norm()), n_random=16)
            rows.append({"hook_name": name, "direction": source, "probe_test_score": probe.test_score,
                         "ablate": _summary(ablate), "add": _summary(add)})
            print(f"{name} {source:9s} ablate {ablate.effect:+.2f} (random {ablate.random_effects.mean():+.2f} "
                  f"± {ablate.random_effects.std():.2f}, z {ablate.z:+.1f}); add {add.effect:+.2f} (random "
                  f"{add.random_effects.mean():+.2f} ± {add.random_effects.std():.2f}, z {add.z:+.1f})")
    return rows


def _row(result) -> dict:
    """A probe result without its direction (576 numbers per layer)."""
    return {k: v for k, v in result.to_dict().items() if k not in ("direction", "type", "data")}


def _summary(check) -> dict:
    return {"baseline": check.baseline, "effect": check.effect, "alpha": check.alpha,
            "random_mean": float(check.random_effects.mean()), "random_std": float(check.random_effects.std()),
            "z": check.z}


def _plot(sweeps):
    """Every dataset's test score (solid) and control task (dashed) per layer; selectivity below."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for i, (name, sweep) in enumerate(sweeps.items()):
        color = f"C{i}"
        metric = "R²" if sweep.results[0].metric == "r2" else "acc"
        top.plot(sweep.layers, [r.test_score for r in sweep.results], "-", color=color, label=f"{name} ({metric})")
        top.plot(sweep.layers, [r.control_score for r in sweep.results], "--", color=color, alpha=0.6)
        bottom.plot(sweep.layers, [r.selectivity for r in sweep.results], "-", color=color, marker="o", markersize=3)
    top.set_ylabel("test score (solid); control task (dashed)")
    top.set_title("linear probes on smollm2-135m resid_post, by layer")
    top.legend(fontsize=8, ncol=2, loc="lower right")
    top.grid(alpha=0.3)
    bottom.set_ylabel("selectivity")
    bottom.set_xlabel("layer")
    bottom.axhline(0, color="k", lw=0.8)
    bottom.grid(alpha=0.3)
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
