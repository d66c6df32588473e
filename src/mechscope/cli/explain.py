"""``mechscope explain`` and ``mechscope score``: explain units and score the explanations::

    mechscope explain smollm2-135m sae/ --store acts/ --units 0-199 --backend local:gemma3-270m
    mechscope score smollm2-135m sae/ --store acts/ --units 0-199 --scorers detection,fuzzing,simulation
    mechscope explain smollm2-135m blocks.15.mlp.hook_post --store acts-neurons/ --out neurons/   # neurons
    mechscope score smollm2-135m sae/ --store acts/ --backend http://127.0.0.1:8000/v1 --api-model NAME

UNITS is an SAE or transcoder directory (its latents; results go into it, in delphi's
``explanations/`` and ``scores/`` layout) or a ``blocks.L.mlp.hook_post`` point (neurons;
results go to ``--out``). Examples come from ``--store``, the harvest the SAE was trained
on or one of the neurons' point: nothing is harvested again. Both commands resume: rerun
after an interruption and only what is missing is computed. ``score`` explains first
whatever has no explanation yet. Every score comes with its controls (each unit scored
with another unit's explanation, and with a random one).

Beside delphi's directories each run writes a summary, ``explanations-POINT-HASH.json``
(``explain``) or ``autointerp-POINT-HASH.json`` and ``.png`` (``score``); the hash covers
the units' files, the activation store's manifest and every option that changes the
result, and each JSON lists them under ``options``. These runs are not recorded in the
results store: ``--store`` names the activation store here, and the delphi directory is
what a rerun resumes from.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mechscope.cli.common import (
    DEFAULT_OUT,
    check_at_least,
    check_out_dir,
    clean_errors,
    files_digest,
    model_argument,
    out,
    output_stem,
    safe_stem,
    write_outputs,
)
from mechscope.errors import InputError

SCORER_NAMES = ("detection", "fuzzing", "simulation", "embedding", "intruder")
EXPLAINER_NAMES = ("default", "contrastive", "top-tokens")


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    app.command("score")(score)


_MODEL = model_argument("The model the units belong to.")
_UNITS = typer.Argument(..., help="An SAE/transcoder directory, or blocks.L.mlp.hook_post for neurons.")
_STORE = typer.Option(..., "--store", help="The activation store the units are read from (SAE: its training harvest).")
_SELECT = typer.Option("0-99", "--units", help="Which units: a range (0-199) and/or a comma list (3,17).")
_BACKEND = typer.Option("local:smollm2-135m", "--backend", help="local:MODEL or an OpenAI-compatible base URL.")
_API_MODEL = typer.Option(None, "--api-model", help="HTTP backends: the served model's name.")
_KEY_ENV = typer.Option("OPENAI_API_KEY", "--api-key-env", help="HTTP backends: environment variable holding the key.")
_CONCURRENCY = typer.Option(4, "--concurrency", help="HTTP backends: requests in flight.")
_OUT = typer.Option(None, "--out", help="Output directory (default: the SAE directory; neurons: "
                    "mechscope-out/neurons-POINT).")
_EXPLAINER = typer.Option("default", "--explainer", help="default, contrastive or top-tokens.")
_CTX = typer.Option(32, "--ctx-len", help="Tokens per example.")
_TOKENS = typer.Option(None, "--max-tokens", help="Scan at most this many stored tokens.")
_BATCH = typer.Option(16, "--batch", help="Units per round (a round's files are written together).")
_N_TEST = typer.Option(20, "--n-test", help="Held-out examples per unit: this many activating and as many random.")


@clean_errors
def explain(model: str = _MODEL, units: str = _UNITS, store: Path = _STORE, select: str = _SELECT,
            backend: str = _BACKEND, api_model: str | None = _API_MODEL, api_key_env: str = _KEY_ENV,
            concurrency: int = _CONCURRENCY, out_dir: Path | None = _OUT, explainer: str = _EXPLAINER,
            ctx_len: int = _CTX, max_tokens: int | None = _TOKENS, batch: int = _BATCH, n_test: int = _N_TEST) -> None:
    """Explain units from their top and quantile-sampled examples (delphi's explanations/ layout)."""
    setup = _Setup(model, units, store, select, backend, api_model, out_dir, ctx_len, max_tokens, batch, n_test,
                   explainer=explainer)
    records, lm = setup.records(), setup.backend(api_key_env, concurrency)
    from mechscope.autointerp import explain_units
    from mechscope.autointerp.report import ExplanationSet

    texts = explain_units(records, backend=lm, out_dir=setup.out_dir, explainer=explainer, batch=batch, progress=True)
    result = ExplanationSet(units=tuple(r.name for r in records), texts=texts, explainer=explainer,
                            backend=lm.describe() if lm is not None else {})
    table = Table("unit", "explanation", title=f"{len(records)} units ({escape(explainer)})")
    for r in records[:20]:
        table.add_row(escape(r.name), escape(texts[r.name]))
    out.print(table)
    write_outputs(result, None, setup.out_dir, output_stem("explanations", setup.module, options=setup.options),
                  options=setup.options)


@clean_errors
def score(model: str = _MODEL, units: str = _UNITS, store: Path = _STORE, select: str = _SELECT,
          backend: str = _BACKEND, api_model: str | None = _API_MODEL, api_key_env: str = _KEY_ENV,
          concurrency: int = _CONCURRENCY, out_dir: Path | None = _OUT, explainer: str = _EXPLAINER,
          scorers: str = typer.Option("detection,fuzzing,simulation,embedding,intruder", "--scorers",
                                      help="Comma-separated: detection, fuzzing, simulation, embedding, intruder."),
          ctx_len: int = _CTX, max_tokens: int | None = _TOKENS, batch: int = _BATCH, n_test: int = _N_TEST) -> None:
    """Score explanations (explaining first what has none) with their shuffled and random controls."""
    chosen = [s.strip() for s in scorers.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SCORER_NAMES]
    if bad or not chosen:
        raise InputError(f"--scorers takes {', '.join(SCORER_NAMES)}; received {scorers!r}")
    setup = _Setup(model, units, store, select, backend, api_model, out_dir, ctx_len, max_tokens, batch, n_test,
                   explainer=explainer, embedding="embedding" in chosen)
    records, lm = setup.records(), setup.backend(api_key_env, concurrency)
    from mechscope.autointerp import explain_units, score_units

    texts = explain_units(records, backend=lm, out_dir=setup.out_dir, explainer=explainer, batch=batch, progress=True)
    report = score_units(records, texts, scorers=chosen, backend=lm, embedder=setup.embedder(), out_dir=setup.out_dir,
                         batch=max(batch, 2), progress=True)
    table = Table("scorer", "explanation", "shuffled", "random", title=f"mean score over {len(records)} units")
    for name in chosen:
        row = report.summary[name]
        cell = lambda c: f"{row[c]['mean']:.3f} ± {row[c]['std']:.3f}" if c in row else "-"  # noqa: E731
        chance = "random-key" if name == "intruder" else "random"
        table.add_row(name, cell("explanation"), cell("shuffled"), cell(chance))
    out.print(table)
    options = {**setup.options, "scorers": chosen}
    write_outputs(report, report.plot(), setup.out_dir, output_stem("autointerp", setup.module, options=options),
                  options=options)


class _Setup:
    """Checks everything cheap first, then loads the model and makes the records."""

    def __init__(self, model, units, store, select, backend, api_model, out_dir, ctx_len, max_tokens, batch, n_test, *,
                 explainer: str, embedding: bool = False) -> None:
        if explainer not in EXPLAINER_NAMES:
            raise InputError(f"--explainer takes {', '.join(EXPLAINER_NAMES)}; received {explainer!r}")
        if not backend.startswith(("http://", "https://", "local")):
            raise InputError(f"--backend takes local:MODEL or an http(s):// URL; received {backend!r}")
        if backend.startswith("http") and not api_model:
            raise InputError("--backend http... needs --api-model (the served model's name)")
        check_at_least(("--ctx-len", ctx_len, 1), ("--batch", batch, 1), ("--n-test", n_test, 1),
                       ("--max-tokens", max_tokens, 1))
        if not (store / "manifest.json").exists():
            raise InputError(f"--store {store} holds no activation store (no manifest.json); harvest one first")
        self.indices = parse_units(select)
        self.sae_dir = Path(units) if Path(units).is_dir() else None
        if self.sae_dir is None and not units.endswith("mlp.hook_post"):
            raise InputError(f"UNITS must be an SAE directory or a blocks.L.mlp.hook_post point; received {units!r}")
        if self.sae_dir is not None and not (self.sae_dir / "cfg.json").exists():
            raise InputError(f"{units} holds no cfg.json; give an SAE directory (mechscope sae train writes one)")
        self.module = units if self.sae_dir is None else json.loads((self.sae_dir / "cfg.json").read_text()).get(
            "hook_name", self.sae_dir.name)
        self.out_dir = out_dir or self.sae_dir or DEFAULT_OUT / f"neurons-{safe_stem(units)}"
        check_out_dir(self.out_dir)
        # What the summary's name hashes and its JSON lists: everything that changes the result.
        self.options = {"model": model, "units": units, "unit_files": _unit_files(self.sae_dir), "store": str(store),
                        "store_manifest": files_digest(store / "manifest.json"), "select": select,
                        "backend": backend, "api_model": api_model, "explainer": explainer, "ctx_len": ctx_len,
                        "max_tokens": max_tokens, "n_test": n_test}
        self.model_name, self.units, self.store_dir, self.backend_spec = model, units, store, backend
        self.api_model, self.needs_embedder = api_model, embedding or explainer == "contrastive"
        self.ctx_len, self.max_tokens, self.explainer, self.n_test = ctx_len, max_tokens, explainer, n_test
        self._embedder = None
        self.model = None

    def embedder(self):
        if self.needs_embedder and self._embedder is None:
            from mechscope.autointerp.embedders import load_embedder

            self._embedder = load_embedder()
        return self._embedder

    def records(self):
        from mechscope.activations import ActivationStore
        from mechscope.autointerp import ExampleConfig, build_records, load_all, neuron_units, sae_units
        from mechscope.models import load_model

        store = ActivationStore.open(self.store_dir)
        self.model = load_model(self.model_name)
        store.check_model(self.model)
        if self.sae_dir is not None:
            from mechscope.sae import load_sae

            source = sae_units(load_sae(self.sae_dir), self.model)
        else:
            source = neuron_units(self.model, self.units)
        hard = 5 if self.explainer == "contrastive" else 0
        config = ExampleConfig(ctx_len=self.ctx_len, max_tokens=self.max_tokens, n_train_hard_negatives=hard,
                               n_test=self.n_test, n_test_random=self.n_test)
        built = build_records(store, source, self.indices, self.out_dir, tokenizer=self.model.tokenizer,
                              config=config, embedder=self.embedder() if hard else None, progress=True)
        if built.skipped:
            out.print(f"[dim]{len(built.skipped)} units fire in too few windows and are skipped[/dim]")
        names = [source.unit_name(u) for u in self.indices if source.unit_name(u) not in dict(built.skipped)]
        if not names:
            raise InputError("none of the chosen units fires often enough in the store; choose others (--units)")
        return load_all(self.out_dir, names)

    def backend(self, api_key_env: str, concurrency: int):
        from mechscope.autointerp import make_backend

        return make_backend(self.backend_spec, api_model=self.api_model, api_key_env=api_key_env,
                            concurrency=concurrency, model=self.model)


def _unit_files(sae_dir: Path | None) -> str | None:
    """A hash of an SAE's own files (its config and weights; not the explanations and
    summaries written beside them), None for neurons."""
    if sae_dir is None:
        return None
    return "".join(files_digest(path) for path in sorted([sae_dir / "cfg.json", *sae_dir.glob("*.safetensors")]))


def parse_units(text: str) -> list[int]:
    """``0-9,20,30-31`` -> [0..9, 20, 30, 31] (distinct, in order)."""
    units: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise ValueError
                units += range(low, high + 1)
            elif part:
                units.append(int(part))
    except ValueError:
        raise InputError(f"--units takes ranges and numbers like 0-199 or 3,17,40-49; received {text!r}") from None
    if not units or min(units) < 0:
        raise InputError(f"--units must name non-negative unit indices; received {text!r}")
    return list(dict.fromkeys(units))
