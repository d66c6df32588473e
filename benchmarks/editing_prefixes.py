"""Why MEMIT's PS exceeds its ES on smollm2-135m: efficacy on the bare rewrite prompt vs
behind the paraphrases' unrelated sentences, and PS with and without them.

    python benchmarks/editing_prefixes.py [N]      # MEMIT on requests 0..N-1 (default 32), ~15 min

Prints a JSON of the shares (0–1). Run once for the README (N = 32): ES bare 0.9375, behind
each of 5 sentences 0.969 / 0.969 / 0.969 / 1.0 / 0.969; PS 0.969, without the sentence 0.922.
"""
import json
import sys
import time

import mechscope
from mechscope.editing import edited
from mechscope.editing.evaluate import target_logprobs
from mechscope.editing.memit import MemitConfig, memit
from mechscope.facts import builtin_facts, known_facts, make_requests
from mechscope.facts.counterfact import PREFIXES

n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
model = mechscope.load_model("smollm2-135m")
known = known_facts(model, builtin_facts())
requests = make_requests(known.facts, n=100, seed=0)[:n]
t = time.time()
edit = memit(model, requests, config=MemitConfig(layers=(0, 1, 2, 3)), progress=True)
print("memit", round(time.time() - t), "s", flush=True)

def wins(prompts, new, true):
    k = len(prompts)
    lp = target_logprobs(model, prompts * 2, new + true)
    return (lp[:k] > lp[k:]).float()

out = {}
with edited(model, edit):
    bare = [r.requested_rewrite.text for r in requests]
    new = [r.requested_rewrite.target_new for r in requests]
    true = [r.requested_rewrite.target_true for r in requests]
    out["ES bare"] = float(wins(bare, new, true).mean())
    for i, prefix in enumerate(PREFIXES[:5]):
        out[f"ES behind prefix {i}"] = float(wins([f"{prefix} {p}" for p in bare], new, true).mean())
    para = [(p, r.requested_rewrite.target_new, r.requested_rewrite.target_true) for r in requests for p in r.paraphrase_prompts]
    out["PS"] = float(wins([p for p, _, _ in para], [a for _, a, _ in para], [b for _, _, b in para]).mean())
    # paraphrases without their prefix
    stripped = []
    for p, a, b in para:
        for prefix in PREFIXES:
            if p.startswith(prefix + " "):
                stripped.append((p[len(prefix) + 1:], a, b))
                break
    out["PS without prefix"] = float(wins([p for p, _, _ in stripped], [a for _, a, _ in stripped], [b for _, _, b in stripped]).mean())
    out["n_para"] = len(para)
    out["n_stripped"] = len(stripped)
print(json.dumps(out, indent=1))
