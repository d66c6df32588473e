"""The explain-then-score loop, resumable, writing delphi's layout.

::

    records = load_all("sae/")
    explanations = explain_units(records, backend=backend, out_dir="sae/")          # explanations/*.txt
    report = score_units(records, explanations, scorers=["detection", "fuzzing"], backend=backend,
                         out_dir="sae/")                                            # scores/*/…txt
    report.summary["detection"]["explanation"]["mean"], report.plot()

**Layout** (delphi's, so users can move between the tools): ``explanations/{unit}.txt``
holds the explanation as a JSON string; ``scores/{scorer}/{unit}.txt`` a JSON list of
per-example results (``fuzzing`` is delphi's ``fuzz``). The controls sit beside them, as
score types of their own: ``scores/{scorer}-shuffled/`` (each unit scored with another
unit's explanation, a fixed derangement of the units) and ``scores/{scorer}-random/``
(a random explanation naming three random common words). Each unit's headline numbers
are in ``autointerp/{scorer}/{control}/{unit}.json``.

**Resumption.** Every file is written atomically as soon as its unit is done; a rerun
reads what exists and computes only the rest: nothing is explained or scored twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mechscope.autointerp.explainers import EXPLAINERS, ExplainConfig
from mechscope.autointerp.records import UnitRecords
from mechscope.autointerp.report import CONTROLS, AutointerpReport, UnitScore, summarise
from mechscope.autointerp.scorers import DELPHI_NAMES, EXPLANATION_FREE, SCORERS, ScoreConfig
from mechscope.errors import InputError, check_int
from mechscope.results import write_json

RANDOM_WORDS = (
    "apple river window music garden winter doctor paper engine silver forest letter market island "
    "yellow bridge pocket camera planet shadow teacher butter castle rabbit ticket violin ocean pillow "
    "candle desert ladder mirror needle orange parrot puzzle rocket saddle tunnel velvet wagon zebra "
    "anchor basket carpet dragon feather hammer jacket kettle lemon marble"
).split()
"""Words random explanations are drawn from (common, concrete, unrelated to code)."""


def explain_units(records: Sequence[UnitRecords], *, backend, out_dir: str | Path, explainer: str = "default",
                  config: ExplainConfig = ExplainConfig(), batch: int = 16, progress: bool = False
                  ) -> dict[str, str]:
    """Explanations of every unit (unit name -> text), reading those already in
    ``out_dir/explanations`` and writing each new one there."""
    if explainer not in EXPLAINERS:
        raise InputError(f"unknown explainer {explainer!r}; known: {', '.join(EXPLAINERS)}")
    check_int("explain_units: batch", batch, minimum=1)
    folder = Path(out_dir) / "explanations"
    found = {r.name: _read_json(folder / f"{r.name}.txt") for r in records}
    todo = [r for r in records if found[r.name] is None]
    bar = tqdm(total=len(records), initial=len(records) - len(todo), desc=f"explain ({explainer})", unit="unit",
               disable=not progress)
    for first in range(0, len(todo), batch):
        chunk = todo[first : first + batch]
        for e in EXPLAINERS[explainer](chunk, backend=backend, config=config):
            write_json(folder / f"{e.unit}.txt", e.text)
            found[e.unit] = e.text
        bar.update(len(chunk))
    bar.close()
    return {name: str(text) for name, text in found.items()}


def score_units(records: Sequence[UnitRecords], explanations: dict[str, str], *, scorers: Sequence[str],
                backend, out_dir: str | Path, embedder=None, config: ScoreConfig = ScoreConfig(),
                controls: Sequence[str] = ("shuffled", "random"), batch: int = 16, progress: bool = False
                ) -> AutointerpReport:
    """Score every unit's explanation and the controls with each scorer; see the module."""
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise InputError(f"unknown scorers {unknown}; known: {', '.join(SCORERS)}")
    if any(c not in CONTROLS[1:] for c in controls):
        raise InputError(f"controls are {', '.join(CONTROLS[1:])}; received {list(controls)}")
    missing = [r.name for r in records if r.name not in explanations]
    if missing:
        raise InputError(f"no explanation for {missing[0]} (and {len(missing) - 1} more); run explain first")
    check_int("score_units: batch", batch, minimum=2)
    out_dir = Path(out_dir)
    texts = _control_texts(records, explanations, config.seed)
    scores: list[UnitScore] = []
    for scorer in scorers:
        wanted = ("explanation",) if scorer in EXPLANATION_FREE else ("explanation", *controls)
        for control in wanted:
            scores += _score_control(records, texts[control], scorer, control, backend, embedder, config, out_dir,
                                     batch, progress)
    return AutointerpReport(units=tuple(r.name for r in records), explanations=dict(explanations),
                            scores=tuple(scores), summary=summarise(scores), backend=backend_description(backend),
                            scorers=tuple(scorers))


def backend_description(backend) -> dict:
    return backend.describe() if backend is not None and hasattr(backend, "describe") else {}


def _control_texts(records: Sequence[UnitRecords], explanations: dict[str, str], seed: int) -> dict[str, list[str]]:
    names = [r.name for r in records]
    true = [explanations[n] for n in names]
    order = sorted(range(len(names)), key=lambda i: names[i])
    # a derangement: each unit gets the explanation of the next one in a seeded cycle
    cycle = [order[int(i)] for i in torch.randperm(len(order), generator=torch.Generator().manual_seed(seed))]
    shuffled = [""] * len(names)
    for k, i in enumerate(cycle):
        shuffled[i] = true[cycle[(k + 1) % len(cycle)]]
    return {"explanation": true, "shuffled": shuffled, "random": [random_explanation(n, seed) for n in names]}


def random_explanation(unit: str, seed: int) -> str:
    """A well-formed explanation that means nothing: three random words, fixed per unit and seed."""
    digest = int.from_bytes(hashlib.blake2b(f"{seed}:{unit}".encode(), digest_size=8).digest(), "little")
    picks = torch.randperm(len(RANDOM_WORDS), generator=torch.Generator().manual_seed(digest % 2**63))[:3]
    words = [RANDOM_WORDS[int(i)] for i in picks]
    return f'the words "{words[0]}", "{words[1]}" and "{words[2]}"'


def _score_control(records, texts, scorer, control, backend, embedder, config, out_dir: Path, batch, progress
                   ) -> list[UnitScore]:
    kind = DELPHI_NAMES.get(scorer, scorer) + ("" if control == "explanation" else f"-{control}")
    summaries = out_dir / "autointerp" / scorer / control
    done = {r.name: _read_json(summaries / f"{r.name}.json") for r in records}
    todo = [i for i, r in enumerate(records) if done[r.name] is None]
    bar = tqdm(total=len(records), initial=len(records) - len(todo), desc=f"{scorer} ({control})", unit="unit",
               disable=not progress)
    for first in range(0, len(todo), batch):
        chunk = todo[first : first + batch]
        lone = scorer in EXPLANATION_FREE and len(chunk) < 2
        extra = [i for i in range(len(records)) if i not in chunk][: 2 - len(chunk)] if lone else []
        # intruders come from the other units asked about: a lone unit borrows one (its result is not kept)
        scored = SCORERS[scorer]([records[i] for i in chunk + extra], [texts[i] for i in chunk + extra],
                                 backend=backend, embedder=embedder, config=config)
        for i, result in zip(chunk, scored):
            name = records[i].name
            write_json(out_dir / "scores" / kind / f"{name}.txt", result.examples)
            summary = {"score": result.score, "metrics": result.metrics, "explanation": texts[i]}
            write_json(summaries / f"{name}.json", summary)
            done[name] = summary
        bar.update(len(chunk))
    bar.close()
    return [UnitScore(unit=r.name, scorer=scorer, control=control, explanation=str(done[r.name]["explanation"]),
                      score=float(done[r.name]["score"]), metrics=dict(done[r.name]["metrics"])) for r in records]


def _read_json(path: Path):
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None  # a damaged file is redone
