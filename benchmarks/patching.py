"""Exact patching of every head's output at every position: mechscope against TransformerLens.

    python benchmarks/patching.py             # smollm2-135m, 16 IOI prompts, all 30 layers
    python benchmarks/patching.py --quick     # 4 prompts, 3 layers: under a minute (mechscope side)

One process, both sides on the same token ids and the same weights:

* mechscope: ``activation_patching(model, task, what="heads_by_pos")`` (denoising, the
  mean logit difference at the last position);
* TransformerLens (if installed): ``patching.get_act_patch_attn_head_out_by_pos`` on a
  ``TransformerBridge`` over a copy of the same HF weights, with the same metric;
* both results must agree within 1e-4; the time ratio is reported (target ≥ 5×);
* AtP's wall time for the same sweep, and how AtP and AtP* correlate with exact
  patching over heads (all positions at once: the ``heads``, ``q`` and ``k`` sweeps).

``--tl-layers`` limits the TransformerLens side to some layers (its full sweep takes
about 40 minutes on 2 cores); the comparison then uses those layers on both sides.
Writes ``benchmarks/results/patching[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from peers import transformer_lens_bridge

import mechscope
from mechscope.patching import activation_patching
from mechscope.patching.attribution import attribution_patching
from mechscope.tasks.registry import make_task


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def correlations(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    x, y = x.flatten().double(), y.flatten().double()
    pearson = torch.corrcoef(torch.stack([x, y]))[0, 1]
    rank = lambda t: t.argsort().argsort().double()  # noqa: E731
    spearman = torch.corrcoef(torch.stack([rank(x), rank(y)]))[0, 1]
    return {"pearson": round(float(pearson), 4), "spearman": round(float(spearman), 4)}


def tl_sweep(model, task, layers):
    """TransformerLens' head-output-by-position sweep on the same tokens, restricted to layers."""
    bridge = transformer_lens_bridge(model)
    if bridge is None:
        return None
    import pandas as pd
    from transformer_lens import patching

    answers, wrong = task.answers, task.wrong
    rows = torch.arange(len(task))

    def metric(logits):
        last = logits[:, -1]
        return (last[rows, answers] - last[rows, wrong]).mean()

    n_pos = task.clean.ids.shape[1]
    index = pd.DataFrame([(layer, pos, head) for layer in layers for pos in range(n_pos)
                          for head in range(model.cfg.n_heads)], columns=["layer", "pos", "head"])
    with torch.no_grad():
        _, clean_cache = bridge.run_with_cache(task.clean.ids, names_filter=lambda name: name.endswith("attn.hook_z"))

        def run():
            flat = patching.get_act_patch_attn_head_out_by_pos(
                bridge, task.corrupt.ids, clean_cache, metric, index_df=index, index_axis_names=None)
            return flat.reshape(len(layers), n_pos, model.cfg.n_heads)

        return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("-n", type=int, default=16, help="IOI prompts")
    parser.add_argument("--quick", action="store_true", help="4 prompts, 3 layers, no TL unless --tl-layers")
    parser.add_argument("--tl-layers", type=str, default=None, help="comma-separated layers for the TL side")
    parser.add_argument("--no-tl", action="store_true")
    args = parser.parse_args()

    model = mechscope.load_model(args.model)
    n = 4 if args.quick else args.n
    task = make_task("ioi", model, n=n, seed=0, metric="logit_diff")
    layers = [0, model.cfg.n_layers // 2, model.cfg.n_layers - 1] if args.quick else list(range(model.cfg.n_layers))
    shape = (task.clean.ids.shape[0], task.clean.ids.shape[1])
    report = {"model": args.model, "task": "ioi", "prompts_x_tokens": list(shape), "layers": layers,
              "torch_threads": torch.get_num_threads()}

    exact, seconds = timed(lambda: activation_patching(model, task, what="heads_by_pos", layers=layers, progress=False))
    report["mechscope_seconds"] = round(seconds, 2)
    report["patches"] = exact.values.numel()
    _, atp_seconds = timed(lambda: attribution_patching(model, task, what="heads_by_pos", layers=layers, progress=False))
    report["atp_seconds"] = round(atp_seconds, 2)

    tl_layers = [int(x) for x in args.tl_layers.split(",")] if args.tl_layers else (None if args.quick else layers)
    if tl_layers and not args.no_tl:
        tl = tl_sweep(model, task, tl_layers)
        if tl is None:
            report["transformer_lens"] = "not installed"
        else:
            (tl_values, tl_seconds) = tl
            same, ours_seconds = exact, seconds
            if tl_layers != layers:  # time mechscope on exactly the same layers too
                same, ours_seconds = timed(lambda: activation_patching(model, task, what="heads_by_pos",
                                                                       layers=tl_layers, progress=False))
            ours = same.values
            report["transformer_lens"] = {
                "layers": tl_layers,
                "seconds": round(tl_seconds, 2),
                "mechscope_seconds_same_layers": round(ours_seconds, 2),
                "speedup": round(tl_seconds / ours_seconds, 2),
                "max_abs_difference": float((tl_values.cpu() - ours).abs().max()),
            }

    # AtP and AtP* against exact patching, over heads (all positions at once)
    sweeps = {}
    for what in ("heads", "q", "k"):
        exact_w = activation_patching(model, task, what=what, layers=layers, progress=False).effects
        atp = attribution_patching(model, task, what=what, layers=layers, progress=False).effects
        entry = {"atp": correlations(exact_w, atp)}
        if what in ("q", "k"):
            fixed = attribution_patching(model, task, what=what, layers=layers, qk_fix=True, progress=False).effects
            entry["atp*_qk_fix"] = correlations(exact_w, fixed)
        else:
            dropped = attribution_patching(model, task, what=what, layers=layers, grad_drop=True, progress=False).effects
            entry["atp*_graddrop_vs_abs_exact"] = correlations(exact_w.abs(), dropped)
        sweeps[what] = entry
    report["atp_vs_exact"] = sweeps

    print(json.dumps(report, indent=2))
    out = Path(__file__).parent / "results" / f"patching{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
