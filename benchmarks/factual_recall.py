"""Where a model recalls facts: causal tracing averaged over known facts, attention knockout,
attribute extraction rates (the figures of Meng et al. 2022 and Geva et al. 2023).

    python benchmarks/factual_recall.py                      # smollm2-135m, 50 known facts
    python benchmarks/factual_recall.py --model gemma3-270m
    python benchmarks/factual_recall.py --quick              # 6 facts

Reports how many built-in facts the model knows, the peaks the paper reports (hidden state
and MLP at the last subject token, attention at the last token), and writes, under
``benchmarks/results/``, ``factual_<model>[_quick].json`` and the figures
``factual_<model>_{trace,average,knockout,extraction}.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import mechscope
from mechscope.facts import builtin_facts, known_facts
from mechscope.tracing import attention_knockout, attribute_extraction, average_trace, causal_trace

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("-n", type=int, default=50, help="known facts to trace")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 6 if args.quick else args.n
    stem = f"factual_{args.model}{'_quick' if args.quick else ''}"
    model = mechscope.load_model(args.model)
    started = time.perf_counter()
    known = known_facts(model, builtin_facts())
    print(known.summary(), flush=True)
    facts = list(known.facts)
    random.Random(0).shuffle(facts)
    facts = facts[:n]
    summary = {"model": args.model, "known": len(known.facts), "checked": known.total,
               "by_relation": known.by_relation, "n_traced": len(facts)}

    example = next((f for f in known.facts if "Eiffel" in f.subject), facts[0])
    causal_trace(model, example).plot().savefig(RESULTS / f"{stem}_trace.png", dpi=110)
    t0 = time.perf_counter()
    average = average_trace(model, facts)
    summary["trace_seconds"] = round(time.perf_counter() - t0, 1)
    summary["peaks"] = {name: {"layer": layer, "aie": round(effect, 4)} for name, (layer, effect) in
                        average.summary().items()}
    summary["clean_p"], summary["corrupted_p"] = average.high, average.low
    average.plot().savefig(RESULTS / f"{stem}_average.png", dpi=110)
    print(json.dumps(summary["peaks"], indent=1), flush=True)

    knockout = attention_knockout(model, facts)
    knockout.plot().savefig(RESULTS / f"{stem}_knockout.png", dpi=110)
    summary["knockout_min_change"] = {s: {"layer": int(row.argmin()), "percent": round(float(row.min()), 1)}
                                      for s, row in zip(knockout.sources, knockout.change)}
    extraction = attribute_extraction(model, facts)
    blocked = attribute_extraction(model, facts, knockout=True)
    extraction.plot().savefig(RESULTS / f"{stem}_extraction.png", dpi=110)
    summary["extraction_rate_any_layer"] = {
        name: {"normal": round(float((extraction.rates[i] > 0).float().mean()), 3),
               "max": round(float(extraction.rates[i].max()), 3),
               "max_subject_blocked": round(float(blocked.rates[i].max()), 3)}
        for i, name in enumerate(extraction.sublayers)}
    summary["extraction_rates"] = {"normal": extraction.rates.tolist(), "subject_blocked": blocked.rates.tolist()}
    summary["knockout_change"] = knockout.change.tolist()
    summary["average_effects"] = average.effects.tolist()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (RESULTS / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("knockout_min_change", "extraction_rate_any_layer")}, indent=1))
    print(f"wrote {RESULTS / stem}.json and figures")


if __name__ == "__main__":
    main()
