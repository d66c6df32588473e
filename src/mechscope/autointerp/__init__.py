"""Automated explanation of units (SAE and transcoder latents, MLP neurons) and scoring of
the explanations, offline with a local model or against any OpenAI-compatible server.

::

    from mechscope.activations import ActivationStore
    from mechscope.autointerp import (ExampleConfig, build_records, load_all, sae_units, make_backend,
                                      explain_units, score_units)

    store = ActivationStore.open("acts/")                                  # the SAE's harvest, reused
    build_records(store, sae_units(sae, model), range(200), "sae/", tokenizer=model.tokenizer)
    records = load_all("sae/")
    backend = make_backend("local:gemma3-270m")                            # or "http://host:8000/v1"
    explanations = explain_units(records, backend=backend, out_dir="sae/")  # explanations/*.txt
    report = score_units(records, explanations, scorers=["detection", "fuzzing", "simulation"],
                         backend=backend, out_dir="sae/")                   # scores/*/*.txt (delphi's layout)
    report.summary["detection"]      # explanation vs shuffled vs random explanations

Modules: :mod:`~.units` (what is explained), :mod:`~.windows` and :mod:`~.examples`
(records from the activation store), :mod:`~.records` (on disk), :mod:`~.prompts`,
:mod:`~.backends`, :mod:`~.explainers`, :mod:`~.scorers`, :mod:`~.ground_truth` and
:mod:`~.validate` (units of known meaning, to check the scorers), :mod:`~.run` (the
resumable loop), :mod:`~.report`, :mod:`~.embedders`.
"""

from mechscope.autointerp.backends import Backend, BackendError, Prompt, make_backend
from mechscope.autointerp.examples import ExampleConfig, RecordsBuilt, build_records
from mechscope.autointerp.explainers import EXPLAINERS, ExplainConfig, Explanation
from mechscope.autointerp.ground_truth import indicator_units
from mechscope.autointerp.records import Example, UnitRecords, load_all, load_records
from mechscope.autointerp.report import AutointerpReport, UnitScore
from mechscope.autointerp.run import explain_units, score_units
from mechscope.autointerp.scorers import SCORERS, ScoreConfig, Scored
from mechscope.autointerp.units import UnitSource, neuron_units, sae_units
from mechscope.autointerp.validate import ScorerValidation, validate_scorers

__all__ = [
    "EXPLAINERS", "SCORERS", "AutointerpReport", "Backend", "BackendError", "Example", "ExampleConfig",
    "ExplainConfig", "Explanation", "Prompt", "RecordsBuilt", "ScoreConfig", "Scored", "ScorerValidation",
    "UnitRecords", "UnitScore", "UnitSource", "build_records", "explain_units", "indicator_units", "load_all",
    "load_records", "make_backend", "neuron_units", "sae_units", "score_units", "validate_scorers",
]
