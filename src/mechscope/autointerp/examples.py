"""Example records of units, chosen from an activation store (never a second harvest).

::

    store = ActivationStore.open("acts/")
    units = sae_units(load_sae("sae/"), model)
    built = build_records(store, units, range(200), "sae/", tokenizer=model.tokenizer)
    records = load_all("sae/")                     # one UnitRecords per unit

For each unit, after one pass computing its peak in every window of ``ctx_len`` tokens
(:mod:`~mechscope.autointerp.windows`), as delphi does:

* **train** (shown to explainers): the ``n_train_top`` windows with the highest peaks,
  ``n_train_quantile`` more drawn evenly from ``n_quantiles`` activation quantiles, and,
  for the contrastive explainer, ``n_train_hard_negatives`` hard negatives;
* **test** (held out for scoring): ``n_test`` activating windows drawn evenly from the
  quantiles of the rest, ``n_test_random`` random windows where the unit stays off, and
  ``n_test_hard_negatives`` hard negatives: windows where it stays off whose sentence
  embedding lies nearest the mean embedding of its top windows.

A unit fires on a token when its activation exceeds ``threshold`` times its largest
activation (0 for SAE latents: any positive value; neurons are rarely exactly zero and
default to 0.3). Units that fire in fewer than ``min_windows`` windows are skipped and
listed. Records are written unit by unit with a manifest: rerun the same call after an
interruption and only the missing units are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from mechscope.autointerp.records import Example, UnitRecords, records_path, save_records
from mechscope.autointerp.windows import WindowIndex, gather, window_maxima
from mechscope.errors import InputError, check_int
from mechscope.results import Result, write_json

FORMAT = "mechscope.autointerp_records"
DENSE_THRESHOLD = 0.3
"""Default firing threshold of dense units (neurons), as a fraction of their largest activation."""


@dataclass(frozen=True, kw_only=True)
class ExampleConfig:
    """How examples are cut and chosen (defaults follow delphi, scaled to small explainers)."""

    ctx_len: int = 32
    """Tokens per example window."""
    n_train_top: int = 10
    """Top-activating windows shown to explainers."""
    n_train_quantile: int = 10
    """Quantile-sampled activating windows shown to explainers."""
    n_train_hard_negatives: int = 0
    """Hard negatives shown to the contrastive explainer (need a sentence embedder)."""
    n_test: int = 20
    """Held-out activating windows for scoring, drawn evenly from the quantiles."""
    n_test_random: int = 20
    """Held-out random windows where the unit stays off."""
    n_test_hard_negatives: int = 0
    """Held-out hard negatives (need a sentence embedder)."""
    n_quantiles: int = 10
    """Activation quantiles that quantile samples are spread over."""
    threshold: float | None = None
    """Fraction of a unit's largest activation above which it fires; None: 0 for sparse
    units, :data:`DENSE_THRESHOLD` for dense ones."""
    min_windows: int = 10
    """Units firing in fewer windows are skipped."""
    max_tokens: int | None = None
    """Scan at most this many stored tokens (None: the whole store)."""
    hard_negative_pool: int = 1000
    """Random windows embedded once, from which every unit's hard negatives are drawn."""
    seed: int = 0
    """Seed of every random draw."""

    def __post_init__(self) -> None:
        for name, least in (("ctx_len", 1), ("n_train_top", 0), ("n_train_quantile", 0), ("n_train_hard_negatives", 0),
                            ("n_test", 0), ("n_test_random", 0), ("n_test_hard_negatives", 0), ("n_quantiles", 1),
                            ("min_windows", 1), ("hard_negative_pool", 1), ("seed", 0)):
            check_int(f"ExampleConfig.{name}", getattr(self, name), minimum=least)
        check_int("ExampleConfig.max_tokens", self.max_tokens, minimum=1, optional=True)
        if self.n_train_top + self.n_train_quantile == 0:
            raise InputError("ExampleConfig needs n_train_top or n_train_quantile above 0: explainers need examples")
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise InputError(f"ExampleConfig.threshold must lie in [0, 1) or be None; received {self.threshold!r}")

    @property
    def needs_embedder(self) -> bool:
        return self.n_train_hard_negatives + self.n_test_hard_negatives > 0

    def threshold_for(self, sparse: bool) -> float:
        if self.threshold is not None:
            return self.threshold
        return 0.0 if sparse else DENSE_THRESHOLD


@dataclass(frozen=True)
class RecordsBuilt(Result):
    """What :func:`build_records` did."""

    directory: Path
    """Where ``records/`` lies."""
    built: tuple[str, ...]
    """Units whose records were written by this call."""
    kept: tuple[str, ...]
    """Units whose records were already there (resumed)."""
    skipped: tuple[tuple[str, int], ...]
    """Units that fire in too few windows, with how many."""
    scanned_tokens: int
    """Tokens scanned."""


def build_records(store, units_source, units: Sequence[int], out_dir: str | Path, *, tokenizer,
                  config: ExampleConfig = ExampleConfig(),
                  embedder: Callable[[list[str]], Tensor] | None = None, progress: bool = False) -> RecordsBuilt:
    """Choose and write the examples of ``units`` under ``out_dir/records`` (see the module)."""
    units = units_source.check_units(units)
    out_dir = Path(out_dir)
    if units_source.reads is not None and units_source.reads not in store.hook_names:
        raise InputError(f"{units_source.module} reads {units_source.reads}, but {store.path} stores "
                         f"{', '.join(store.hook_names)}; give the store harvested at {units_source.reads}")
    if config.needs_embedder and embedder is None:
        raise InputError("hard negatives need a sentence embedder (mechscope.autointerp.embedders); pass embedder=")
    _check_manifest(out_dir, store, units_source, config)
    names = [units_source.unit_name(u) for u in units]
    todo = [u for u, name in zip(units, names) if not records_path(out_dir, name).exists()]
    index = WindowIndex.of(store, ctx_len=config.ctx_len, max_tokens=config.max_tokens)
    skipped: list[tuple[str, int]] = []
    if todo:
        skipped = _build(store, units_source, todo, index, out_dir, tokenizer, config, embedder, progress)
    built = tuple(units_source.unit_name(u) for u in todo if units_source.unit_name(u) not in dict(skipped))
    kept = tuple(name for name, u in zip(names, units) if u not in todo)
    return RecordsBuilt(directory=out_dir, built=built, kept=kept, skipped=tuple(skipped),
                        scanned_tokens=len(index.token_ids))


def _check_manifest(out_dir: Path, store, units_source, config: ExampleConfig) -> None:
    """Refuse records made from another store or with other settings; write the manifest."""
    manifest = {"format": FORMAT, "version": 1, "module": units_source.module, "store": str(store.path),
                "store_model": store.manifest["model"]["structure"],
                "store_tokens": min(len(store), config.max_tokens or len(store)),
                "config": asdict(config)}
    path = out_dir / "records" / "manifest.json"
    if path.exists():
        import json

        old = json.loads(path.read_text())
        if old.get("module") == manifest["module"]:
            diffs = [k for k in ("store_model", "store_tokens", "config") if old.get(k) != manifest[k]]
            if diffs:
                raise InputError(f"{path} holds records made with another {' and '.join(diffs)}; use the same "
                                 f"settings to resume, or another output directory")
            return
    write_json(path, manifest)


def _build(store, units_source, units: list[int], index: WindowIndex, out_dir: Path, tokenizer,
           config: ExampleConfig, embedder, progress: bool) -> list[tuple[str, int]]:
    peaks = window_maxima(store, units_source, units, index, progress=progress)
    tops = peaks.max(0).values.clamp(min=0)
    fraction = config.threshold_for(units_source.sparse)
    thresholds = tops * fraction
    generator = torch.Generator().manual_seed(config.seed)
    pool = _HardNegativePool(index, tokenizer, embedder, config, generator) if config.needs_embedder else None
    plans, skipped = [], []
    for j, unit in enumerate(units):
        firing = peaks[:, j] > thresholds[j]
        if int(firing.sum()) < config.min_windows or tops[j] <= 0:
            skipped.append((units_source.unit_name(unit), int(firing.sum())))
            plans.append(None)
            continue
        plans.append(_choose(peaks[:, j], firing, config, generator))
    if pool is not None:
        for j, plan in enumerate(plans):
            if plan is not None:
                _add_hard_negatives(plan, pool, peaks[:, j] <= thresholds[j], config)
    live = [j for j, plan in enumerate(plans) if plan is not None]
    chosen = [[w for _, windows in plans[j] for w, _ in windows] for j in live]
    acts, counts = gather(store, units_source, [units[j] for j in live], index, chosen, thresholds[live],
                          progress=progress)
    effects = units_source.logit_effects([units[j] for j in live]) if live else None
    decode = _Decoder(tokenizer)
    for n, j in enumerate(live):
        records, ids = _assemble(units_source, units[j], plans[j], acts[n], counts[n], index, decode,
                                 float(thresholds[j]), float(tops[j]), None if effects is None else effects[n])
        save_records(records, ids, records_path(out_dir, records.name))
    return skipped


Plan = list[tuple[str, list[tuple[int, int]]]]
"""Per kind, the chosen (window, quantile) pairs."""


def _choose(peaks: Tensor, firing: Tensor, config: ExampleConfig, generator: torch.Generator) -> Plan:
    """Top, quantile and random-negative windows of one unit (disjoint)."""
    active = firing.nonzero().squeeze(-1)
    active = active[peaks[active].argsort(descending=True)]
    top = active[: config.n_train_top]
    rest = active[config.n_train_top :]
    # quantiles of the rest, highest first; train and test draws are disjoint
    groups = [g for g in rest.tensor_split(min(config.n_quantiles, max(len(rest), 1))) if len(g)]
    shuffled = [g[torch.randperm(len(g), generator=generator)] for g in groups]
    train_q = _spread(shuffled, config.n_train_quantile)
    used = {w for w, _ in train_q}
    test_q = _spread([g[[int(w) not in used for w in g]] for g in shuffled], config.n_test)
    off = (~firing).nonzero().squeeze(-1)
    random = off[torch.randperm(len(off), generator=generator)[: config.n_test_random]]
    return [("train_top", [(int(w), 0) for w in top]), ("train_quantile", train_q),
            ("test_activating", test_q), ("test_random", [(int(w), -1) for w in random])]


def _spread(groups: list[Tensor], n: int) -> list[tuple[int, int]]:
    """``n`` windows taken round-robin over the groups (quantile q+1 for group q)."""
    picks: list[tuple[int, int]] = []
    depth = 0
    while len(picks) < n and any(depth < len(g) for g in groups):
        for q, group in enumerate(groups):
            if depth < len(group) and len(picks) < n:
                picks.append((int(group[depth]), q + 1))
        depth += 1
    return picks


class _HardNegativePool:
    """Random windows embedded once; each unit's hard negatives are the off windows among
    them nearest the mean embedding of its top windows."""

    def __init__(self, index: WindowIndex, tokenizer, embedder, config: ExampleConfig, generator) -> None:
        n = min(config.hard_negative_pool, index.n_windows)
        self.windows = torch.randperm(index.n_windows, generator=generator)[:n]
        self.index, self.tokenizer, self.embedder = index, tokenizer, embedder
        self.vectors = _unit_rows(embedder(self.texts(self.windows.tolist())))

    def texts(self, windows: list[int]) -> list[str]:
        grid = self.index.token_grid(windows)
        return [self.tokenizer.decode(self.index.token_ids[row[row >= 0]].tolist()) for row in grid]

    def nearest(self, query_windows: list[int], off: Tensor, n: int) -> list[int]:
        query = _unit_rows(self.embedder(self.texts(query_windows))).mean(0)
        sims = self.vectors @ query
        sims[~off[self.windows]] = -torch.inf
        order = sims.argsort(descending=True)[:n]
        return [int(self.windows[i]) for i in order if torch.isfinite(sims[i])]


def _unit_rows(x: Tensor) -> Tensor:
    x = x.float()
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def _add_hard_negatives(plan: Plan, pool: _HardNegativePool, off: Tensor, config: ExampleConfig) -> None:
    taken = {w for _, windows in plan for w, _ in windows}
    off = off.clone()
    off[list(taken)] = False
    top = [w for w, _ in plan[0][1][:5]]
    near = pool.nearest(top, off, config.n_train_hard_negatives + config.n_test_hard_negatives)
    cut = config.n_train_hard_negatives
    plan.append(("train_hard_negative", [(w, -1) for w in near[:cut]]))
    plan.append(("test_hard_negative", [(w, -1) for w in near[cut:]]))


class _Decoder:
    """Token id -> text, cached. Special tokens (the end-of-text between packed documents)
    read as a newline: their text, put in a prompt, would be read as the special token."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.cache = tokenizer, {}
        self.special = set(getattr(tokenizer, "all_special_ids", []) or [])

    def __call__(self, token: int) -> str:
        if token not in self.cache:
            self.cache[token] = "\n" if token in self.special else self.tokenizer.decode([token])
        return self.cache[token]


def _assemble(units_source, unit: int, plan: Plan, acts: Tensor, counts, index: WindowIndex, decode,
              threshold: float, top: float, effects: Tensor | None) -> tuple[UnitRecords, Tensor]:
    windows = [w for _, ws in plan for w, _ in ws]
    grid = index.token_grid(windows)
    ids = torch.where(grid >= 0, index.token_ids[grid.clamp(min=0)], -1)
    examples, row = [], 0
    for kind, chosen in plan:
        for _, quantile in chosen:
            n = int((grid[row] >= 0).sum())
            examples.append(Example(str_tokens=tuple(decode(int(t)) for t in ids[row, :n]),
                                    activations=tuple(acts[row, :n].tolist()), kind=kind, quantile=quantile))
            row += 1
    promoted = suppressed = ()
    if effects is not None:
        up, down = effects.topk(10), (-effects).topk(10)
        promoted = tuple((decode(int(i)), float(v)) for v, i in zip(up.values, up.indices))
        suppressed = tuple((decode(int(i)), -float(v)) for v, i in zip(down.values, down.indices))
    fired = sum(counts.values())
    records = UnitRecords(
        name=units_source.unit_name(unit), module=units_source.module, unit=unit, examples=tuple(examples),
        threshold=threshold, max_activation=top, firing_rate=fired / len(index.token_ids),
        top_tokens=tuple((decode(t), c) for t, c in counts.most_common(10)), promoted=promoted, suppressed=suppressed)
    return records, ids
