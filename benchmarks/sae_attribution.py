"""SAE feature attribution (gradient × activation) against exact ablation, on a real model.

    python benchmarks/sae_attribution.py sae-runs/smollm2-l15/sae              # IOI, 16 prompts
    python benchmarks/sae_attribution.py SAE_DIR --task greater-than -n 32 --top 20

Splices the SAE (with its error term) into the model it was trained on, attributes the
task's metric to every latent in one backward pass, then zero-ablates each of the
``--top`` latents with the largest |attribution| (one forward pass each) and compares.
Writes ``benchmarks/results/sae_attribution.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sae_dir", help="an SAE saved by `mechscope sae train` (SAELens layout)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="ioi")
    parser.add_argument("-n", type=int, default=16, help="prompts")
    parser.add_argument("--top", type=int, default=10, help="latents checked by exact ablation")
    a = parser.parse_args()

    from mechscope.models import load_model
    from mechscope.sae import exact_feature_ablation, feature_attribution, load_sae
    from mechscope.tasks import make_task

    model = load_model(a.model)
    sae = load_sae(a.sae_dir)
    task = make_task(a.task, model, n=a.n)
    attribution = feature_attribution(model, sae, task)
    top = attribution.top(a.top)
    features = [f for f, _ in top]
    estimated = torch.tensor([score for _, score in top])
    exact = exact_feature_ablation(model, sae, task, features)
    pearson = float(torch.corrcoef(torch.stack([estimated, exact]))[0, 1])
    sign = float((estimated.sign() == exact.sign()).float().mean())
    print(f"{a.task} ({a.n} prompts), metric {attribution.metric} = {attribution.metric_value:.3f}")
    print(f"{'latent':>7} {'grad x act':>11} {'exact drop':>11}")
    for f, e, x in zip(features, estimated.tolist(), exact.tolist()):
        print(f"{f:>7} {e:>11.4f} {x:>11.4f}")
    print(f"Pearson r over the top {a.top}: {pearson:.3f}; same sign: {sign:.0%}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "sae_attribution.json"
    path.write_text(json.dumps({
        "model": a.model, "sae": sae.cfg.hook_name, "task": a.task, "n": a.n, "metric": attribution.metric,
        "metric_value": attribution.metric_value, "latents": features, "attribution": estimated.tolist(),
        "exact": exact.tolist(), "pearson": pearson, "same_sign": sign,
    }, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
