"""What hooks cost: HookedModel against the raw Hugging Face forward, in one process.

    python benchmarks/hook_overhead.py            # smollm2-135m, 16 prompts, median of 9
    python benchmarks/hook_overhead.py --quick    # fewer repeats, under a minute

Measured, with every side timed in the same loop (interleaved, so drift in machine
load hits all sides alike):

* plain forward through HookedModel ÷ raw HF forward           (target ≤ 1.05)
* run_with_cache of every hook point ÷ raw HF forward          (target ≤ 1.3)
* the cache's size, and the process's peak-RSS rise while caching
* how long ``load_model`` takes once the dequantized weights are cached (target ≤ 5 s)
* with transformer-lens installed: its TransformerBridge on the same weights, the same
  two ratios.

Writes ``benchmarks/results/hook_overhead[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch
from peers import transformer_lens_bridge

import mechscope

PROMPTS = [
    "When Mary and John went to the store, John gave a drink to",
    "The Eiffel Tower is located in the city of",
    "After Lisa and Tom arrived at the park, Tom handed the ball to",
    "The capital of Germany is the city of",
]


def interleaved(sides: dict, repeats: int) -> dict[str, float]:
    """Median seconds per side, running the sides in turn each round."""
    for fn in sides.values():  # warm-up
        fn()
    samples = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def transformer_lens_sides(model, batch) -> dict:
    """TransformerBridge over the same weights, if transformer-lens is installed."""
    bridge = transformer_lens_bridge(model)
    if bridge is None:
        return {}
    ids = batch.ids  # the same token ids on both sides (the bridge would add BOS to strings)
    return {"tl_forward": lambda: bridge(ids), "tl_run_with_cache": lambda: bridge.run_with_cache(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 repeats: under a minute")
    parser.add_argument("--no-tl", action="store_true", help="skip transformer-lens even if installed")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats

    mechscope.load_model(args.model)  # the first load of a bundled model dequantizes and caches it
    start = time.perf_counter()
    model = mechscope.load_model(args.model)
    load_seconds = time.perf_counter() - start
    batch = model.tokenize([PROMPTS[i % len(PROMPTS)] for i in range(args.batch)])
    hf = model.hf_model
    position_ids = batch.position_ids() if batch.has_padding else None

    def raw():
        hf(input_ids=batch.ids, attention_mask=batch.attention_mask, position_ids=position_ids, use_cache=False)

    sides = {"hf_forward": raw, "hooked_forward": lambda: model(batch), "run_with_cache": lambda: model.run_with_cache(batch)}
    if not args.no_tl:
        sides.update(transformer_lens_sides(model, batch))

    rss_before = peak_rss_mb()
    with torch.no_grad():
        _, cache = model.run_with_cache(batch)
        cache_mb = sum(t.numel() * t.element_size() for t in cache.values()) / 2**20
        rss_rise = peak_rss_mb() - rss_before
        del cache
        seconds = interleaved(sides, repeats)

    base = seconds["hf_forward"]
    result = {
        "model": args.model,
        "batch": list(batch.ids.shape),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cached_load_seconds": round(load_seconds, 2),
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "ratios_to_hf_forward": {k: round(v / base, 3) for k, v in seconds.items() if k != "hf_forward"},
        "cache_points": len(model.hook_names()) - model.cfg.n_layers,
        "cache_mb": round(cache_mb, 1),
        "peak_rss_rise_while_caching_mb": round(rss_rise, 1),
        "targets": {"hooked_forward": 1.05, "run_with_cache": 1.3},
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"hook_overhead{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
