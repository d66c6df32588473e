"""SAEBench's sparse-probing table on an SAE of smollm2-135m: full and top-k probes on the
SAE's latents beside the same on the residual channels at its hook point.

    python benchmarks/sparse_probing.py sae-runs/smollm2-l15/sae     # make sae-smollm2's SAE
    python benchmarks/sparse_probing.py SAE_DIR --quick              # 128 examples, 2 datasets

Every classification dataset of mechscope.probes.DATASETS (512 examples, seed 0) is read
at the SAE's hook point; each cell is a probe with its controls (test accuracy shown).
Writes ``benchmarks/results/sparse_probing[_quick].json``, ``.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
CLASSIFICATION = ["sva-number", "ioi-order", "country-city", "entity-kind", "digit-token"]
"""The built-in datasets with classes (number-value is a regression target)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sae_dir", help="an SAE saved by `mechscope sae train` (SAELens layout)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ks", default="1,2,5,10", help="the top-k columns")
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)

    from mechscope.models import load_model
    from mechscope.probes import make_probe_data, sparse_probing
    from mechscope.sae import load_sae

    model = load_model(a.model)
    sae = load_sae(a.sae_dir)
    n = 128 if a.quick else 512
    names = ["sva-number", "country-city"] if a.quick else CLASSIFICATION
    started = time.perf_counter()
    datasets = [make_probe_data(name, model, n=n, seed=0) for name in names]
    table = sparse_probing(model, datasets, sae=sae, ks=[int(k) for k in a.ks.split(",")],
                           sae_name=f"{a.sae_dir} ({sae.cfg.architecture}, k={sae.cfg.k}, {sae.cfg.d_sae} latents)")
    seconds = time.perf_counter() - started
    markdown = table.to_markdown()
    print(markdown)
    suffix = "_quick" if a.quick else ""
    RESULTS.mkdir(exist_ok=True)
    table.plot().savefig(RESULTS / f"sparse_probing{suffix}.png", dpi=110)
    (RESULTS / f"sparse_probing{suffix}.md").write_text(markdown + "\n")
    keep = ("features", "penalty", "test_score", "control_score", "selectivity", "shuffled_score", "chance")
    cells = {row.data: {where: {column: {k: getattr(r, k) for k in keep} for column, r in zip(
        ("full", *(f"top-{k}" for k in table.ks)), results)} for where, results in (("resid", row.resid),
                                                                                  ("sae", row.sae))}
             for row in table.rows}
    path = RESULTS / f"sparse_probing{suffix}.json"
    path.write_text(json.dumps({"model": a.model, "sae_dir": str(a.sae_dir), "sae": table.sae, "hook_name":
                                table.hook_name, "n": n, "ks": list(table.ks), "seconds": seconds,
                                "columns": list(table.columns), "scores": table.scores().tolist(),
                                "cells": cells}, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
