"""Steering smollm2-135m on two behaviours, against random directions of the same norm.

    python benchmarks/steering.py            # 10 layers x 5 strengths per behaviour
    python benchmarks/steering.py --quick    # 3 layers x 3 strengths, fewer samples

For each behaviour (``weddings``: a topic, Turner et al.'s example; ``sva-plural``: the
subject's number in mechscope.tasks' agreement prompts) it builds a mean-difference
vector from 32 seeded pairs at every probed layer, sweeps layer x strength measuring the
effect and its cost (KL from the unsteered model on held-out corpus text, perplexity)
with two random directions per cell, takes the recommendation under the KL limit, and
checks it where it matters:

* weddings: sampled continuations of eight neutral prompts, plain / steered / random,
  and the share of them that use a wedding word;
* sva-plural: on held-out singular-subject prompts (another seed), the share where the
  plural verb outranks the singular one, plain / steered / random.

At the recommended layer and strength it also compares the vector methods (ActAdd from
one pair, mean-diff, PCA-diff centred as repeng's and uncentred, probe). Writes ``benchmarks/results/steering[_quick].json``
and one sweep figure per behaviour.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
WEDDING = re.compile(r"wedding|bride|groom|marr|ceremony|vows|honeymoon|engag", re.IGNORECASE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-kl", type=float, default=0.5, help="cost limit for the recommendation (nats/token)")
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)

    from mechscope.models import load_model
    from mechscope.steering import NeutralText, SweepConfig

    model = load_model(a.model)
    layers = [6, 12, 18] if a.quick else list(range(0, model.cfg.n_layers, 3))
    config = SweepConfig(alphas=(0.25, 0.5, 1.0) if a.quick else (0.125, 0.25, 0.5, 1.0, 2.0), n_random=2,
                         max_kl=a.max_kl)
    neutral = NeutralText.of(model, rows=6, seq_len=64)
    suffix = "_quick" if a.quick else ""
    report = {"model": a.model, "layers": layers, "alphas": list(config.alphas), "max_kl": a.max_kl,
              "neutral_perplexity": neutral.plain_perplexity, "behaviours": {}}
    for behaviour, check in (("weddings", _weddings_check), ("sva-plural", _agreement_check)):
        report["behaviours"][behaviour] = _run(model, behaviour, layers, config, neutral, check, a.quick, suffix)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"steering{suffix}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _run(model, behaviour, layers, config, neutral, check, quick, suffix) -> dict:
    from mechscope.steering import default_effect, make_pairs, make_vector, steering_sweep

    started = time.perf_counter()
    pairs = make_pairs(behaviour, model, n=32, seed=0)
    vector = make_vector(model, pairs, method="mean-diff", layers=layers, position="last")
    effect = default_effect(behaviour, model, seed=1)
    sweep = steering_sweep(model, vector, effect, neutral, config=config, progress=True)
    figure = RESULTS / f"steering_{behaviour}{suffix}.png"
    RESULTS.mkdir(exist_ok=True)
    sweep.plot().savefig(figure, dpi=110)
    best = sweep.recommended
    print(f"\n{behaviour}: {effect.name}, unsteered {sweep.plain_effect:.3f}")
    print("effect gain (rows: layers, columns: strengths)\n", (sweep.effect - sweep.plain_effect).numpy().round(2))
    print("random gain\n", (sweep.random_effect - sweep.plain_effect).numpy().round(2))
    print("KL\n", sweep.kl.numpy().round(3))
    print(f"recommended under KL <= {config.max_kl}: {best}")
    out = {"effect": effect.name, "sweep": sweep.to_dict(), "figure": figure.name,
           "recommended": None if best is None else vars(best)}
    if best is not None:
        out["check"] = check(model, vector.at(best.layer), best.alpha, quick)
        out["methods"] = _methods(model, pairs, best, effect, neutral)
        print(json.dumps(out["check"], indent=1)[:2000])
        print(json.dumps(out["methods"], indent=1))
    out["seconds"] = time.perf_counter() - started
    return out


def _methods(model, pairs, best, effect, neutral) -> dict:
    """Each vector method at the recommended layer and strength: effect gain and KL."""
    from mechscope.steering import ContrastPairs, make_vector, steer

    plain = effect(model)
    rows = {}
    variants = (("actadd", "actadd", {}), ("mean-diff", "mean-diff", {}), ("pca-diff", "pca-diff", {}),
                ("pca-diff uncentred", "pca-diff", {"center": False}), ("probe", "probe", {}))
    for label, method, options in variants:
        data = ContrastPairs(name=pairs.name, positive=pairs.positive[:1], negative=pairs.negative[:1]) \
            if method == "actadd" else pairs
        vector = make_vector(model, data, method=method, layers=[best.layer], position="last", **options)
        with steer(model, vector, alpha=best.alpha):
            rows[label] = {"effect_gain": effect(model) - plain, "kl": neutral.cost(model)[0],
                            "norm": vector.norms()[vector.hook_names[0]]}
    return rows


def _weddings_check(model, vector, alpha, quick) -> dict:
    """Share of sampled continuations of neutral prompts that use a wedding word."""
    from mechscope.steering import generate, random_like, steer
    from mechscope.steering.behaviours import NEUTRAL_PROMPTS

    samples = 2 if quick else 4
    texts = {"plain": [], "steered": [], "random": []}
    for seed in range(samples):
        options = dict(max_new_tokens=30, do_sample=True, temperature=1.0, top_k=50, seed=seed)
        texts["plain"] += generate(model, list(NEUTRAL_PROMPTS), **options)
        with steer(model, vector, alpha=alpha):
            texts["steered"] += generate(model, list(NEUTRAL_PROMPTS), **options)
        with steer(model, random_like(vector, seed=seed), alpha=alpha):
            texts["random"] += generate(model, list(NEUTRAL_PROMPTS), **options)
    share = {k: sum(bool(WEDDING.search(t)) for t in v) / len(v) for k, v in texts.items()}
    return {"share_with_wedding_word": share, "n": len(texts["plain"]),
            "examples": {k: [p + t for p, t in zip(NEUTRAL_PROMPTS[:3], v[:3])] for k, v in texts.items()}}


def _agreement_check(model, vector, alpha, quick) -> dict:
    """Share of held-out singular-subject prompts where the plural verb outranks the singular."""
    from mechscope.steering import random_like, steer
    from mechscope.steering.behaviours import singular_to_plural_task

    task = singular_to_plural_task(model, n=32, seed=2)
    rows = torch.arange(len(task))

    def plural_first() -> float:
        with torch.no_grad():
            logits = model(task.clean)[rows, task.answer_pos]
        return float((logits[rows, task.answers] > logits[rows, task.wrong]).float().mean())

    plain = plural_first()
    with steer(model, vector, alpha=alpha):
        steered = plural_first()
    randoms = []
    for seed in range(4):
        with steer(model, random_like(vector, seed=seed), alpha=alpha):
            randoms.append(plural_first())
    return {"share_plural_verb_first": {"plain": plain, "steered": steered, "random": sum(randoms) / len(randoms)},
            "n": len(task), "prompts": list(task.prompts[:3])}


if __name__ == "__main__":
    raise SystemExit(main())
