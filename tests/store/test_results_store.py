"""The results store: every result type round-trips exactly, stages are reused, two
writers at once lose nothing, and damaged or foreign files give one clear line."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import multiprocessing
import pkgutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
import torch
from tiny import WORDS, tiny_hf_model, tiny_tokenizer

import mechscope
from mechscope import HookedModel
from mechscope.results import Result
from mechscope.store import StoreError, open_store
from mechscope.store.codec import CodecError, decode, encode
from mechscope.store.recorder import RunRefused, recording
from mechscope.tasks.task import Task

PROMPT = "the cat sat on the mat and the dog"


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


@pytest.fixture(scope="module")
def task(model) -> Task:
    return Task.from_prompts(model, name="pairs", clean=["the cat sat on", "a dog ran to"],
                             corrupt=["the dog sat on", "a cat ran to"], answers=[" the", " a"], wrong=[" mat", " the"])


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "results.db") as opened:
        yield opened


def same(a, b) -> bool:
    """Deep equality that compares tensors exactly (dtype, shape, values)."""
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        if a.is_floating_point():  # NaN where NaN was, the rest bit for bit
            return torch.equal(a.isnan(), b.isnan()) and torch.equal(a[~a.isnan()], b[~b.isnan()])
        return torch.equal(a, b)
    if isinstance(a, torch.nn.Module):
        return type(a) is type(b) and same(a.cfg, b.cfg) and same(a.state_dict(), b.state_dict())
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)  # NaN equals NaN here


# ---------------------------------------------------------------- every result type
def _sae(model, hook="blocks.0.hook_resid_post"):
    from mechscope.sae import SAEConfig, SparseAutoencoder

    torch.manual_seed(0)
    return SparseAutoencoder(SAEConfig(d_in=model.cfg.d_model, d_sae=32, architecture="topk", k=4, hook_name=hook))


def _factories(model, task) -> dict[str, object]:
    """One way to make each Result type on a tiny model (cheap settings)."""
    from mechscope.activations.source import TensorSource
    from mechscope.circuits import Circuit, edge_attribution_patching, faithfulness_curve
    from mechscope.circuits.evaluate import EdgeEvaluator
    from mechscope.heads import head_roles
    from mechscope.lens import direct_logit_attribution, logit_lens
    from mechscope.lens.comparison import LensComparison
    from mechscope.patching import activation_patching
    from mechscope.sae import SAEConfig, TrainConfig, evaluate_sae, feature_attribution, feature_dashboard, train_sae
    from mechscope.tasks.evaluate import evaluate_task
    from mechscope.toys.induction_check import verify_induction

    words = "the cat sat on mat and dog ran to a red black one two three".split()
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(40)) for i in range(40)]
    scores = functools.cache(lambda: edge_attribution_patching(model, task, method="eap", progress=False))
    evaluator = functools.cache(lambda: EdgeEvaluator.of(model, task))
    return {
        "TaskReport": lambda: evaluate_task(model, task),
        "LogitLensResult": lambda: logit_lens(model, PROMPT, answer=" the"),
        "DLAResult": lambda: direct_logit_attribution(model, task),
        "LensComparison": lambda: LensComparison(
            model_name="m", layer_labels=("L0", "final"), logit_kl=torch.tensor([1.5, 0.0]),
            tuned_kl=torch.tensor([0.5, 0.0]), logit_perplexity=torch.tensor([9.0, 3.0], dtype=torch.float64),
            tuned_perplexity=torch.tensor([4.0, 3.0], dtype=torch.float64), n_tokens=10, n_predicted=9),
        "HeadRoles": lambda: head_roles(model, n_seqs=2, seq_len=8),
        "PatchingResult": lambda: activation_patching(model, task, what="heads", progress=False),
        "EdgeScores": scores,
        "Circuit": lambda: Circuit.from_scores(scores().graph, scores().as_dict(), budget=0.1, method="eap"),
        "FaithfulnessCurve": lambda: faithfulness_curve(evaluator(), scores().graph, scores().as_dict(),
                                                        progress=False),
        "FeatureAttribution": lambda: feature_attribution(model, _sae(model), task),
        "FeatureDashboards": lambda: feature_dashboard(model, _sae(model), texts, top=2, seq_len=16, progress=False),
        "SAEEvaluation": lambda: evaluate_sae(model, _sae(model), texts, n_tokens=64, seq_len=16, progress=False),
        "TrainResult": lambda: train_sae(SAEConfig(d_in=8, d_sae=16, architecture="relu"),
                                         TensorSource(torch.randn(64, 8)), TrainConfig(total_steps=2, batch_size=16)),
        "InductionCheck": lambda: verify_induction(model_for_induction(), n_seqs=4),
        **_circuit_factories(model, task, scores, evaluator),
        **_investigation_factories(model),
        **_fact_factories(model),
        **_probe_and_steering_factories(model, task),
        **_autointerp_factories(model),
        **_toy_factories(model),
    }


_TRAINED_MODEL = "holds the trained HookedModel itself (the codec stores no model); save that with save_pretrained"
NOT_STORABLE = {"InductionTraining": "holds the trained model itself; save that with save_pretrained",
                "TrainedToy": _TRAINED_MODEL, "FormationTraining": _TRAINED_MODEL, "GrokkingTraining": _TRAINED_MODEL,
                "OthelloTraining": _TRAINED_MODEL}


def _circuit_factories(model, task, scores, evaluator) -> dict[str, object]:
    from mechscope.circuits import acdc, faithfulness
    from mechscope.circuits.node_masks import NodeEvaluator
    from mechscope.circuits.node_prune import prune_nodes
    from mechscope.circuits.nodes import node_attribution
    from mechscope.circuits.sizing import smallest_faithful

    def size_choice():
        """The smallest faithful circuit of the top edges by |EAP score|."""
        ranked = scores().as_dict()
        order = sorted(ranked, key=lambda e: (-abs(ranked[e]), e))
        measure = evaluator()
        m_full, m_empty = measure(frozenset(order)), measure(frozenset())
        return smallest_faithful(lambda k: faithfulness(measure(frozenset(order[:k])), m_empty, m_full), len(order))

    return {
        "ACDCResult": lambda: acdc(model, task, threshold=0.01, progress=False),
        "NodeScores": lambda: node_attribution(model, task, progress=False),
        "NodePruning": lambda: prune_nodes(NodeEvaluator.of(model, task), budget=0.2, progress=False),
        "SizeChoice": size_choice,
    }


@functools.cache
def _investigation(model):
    """One investigation of a task file on the tiny model, with an SAE: every stage runs.
    Lenient floors: a tiny random model "does" nothing, and the plumbing is what is stored."""
    from mechscope.investigate import InvestigateOptions, investigate
    from mechscope.sae.saelens import save_sae

    rows = []
    for i in range(8):
        a, b, c = (WORDS[(i * 5 + k) % len(WORDS)] for k in (0, 3, 7))
        clean = f"the {a} and the {b} sat on the {c}"
        rows.append({"clean": clean, "corrupt": clean.replace(f"the {a} and", f"the {b} and", 1),
                     "answer": f" {a}", "wrong": f" {b}"})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        sae = save_sae(_sae(model), Path(folder) / "sae")
        options = InvestigateOptions(min_accuracy=0.0, min_gap=-1e9, n=4, patch_prompts=2, exact_layers=1, top_heads=2,
                                     role_seqs=2, role_seq_len=6, ig_steps=1, minimality_edges=1, features_top=2,
                                     sae=(str(sae),))
        return investigate(model, str(path), options, progress=False)


def _investigation_factories(model) -> dict[str, object]:
    found = lambda: _investigation(model)  # noqa: E731
    return {
        "Investigation": found,
        "Behaviour": lambda: found().behaviour,
        "SplitSummary": lambda: found().split,
        "Where": lambda: found().where,
        "EstimateAgreement": lambda: found().where.agreement,
        "Who": lambda: found().who,
        "MoverScores": lambda: found().who.movers,
        "CircuitStage": lambda: found().circuit,
        "CircuitCheck": lambda: found().circuit.check,
        "NodeView": lambda: found().circuit.view,
        "Features": lambda: found().features,
        "SAEFeatures": lambda: found().features.saes[0],
        "Summary": lambda: found().summary,
    }


@functools.cache
def _known_fact(model):
    """A fact the tiny model knows: its own greedy completion of the prompt."""
    from mechscope.facts import Fact

    prompt = "the eiffel tower is located in city of"
    with torch.no_grad():
        top = int(model(prompt)[0, -1].argmax())
    return Fact(known_id=0, prompt=prompt, subject="eiffel tower", attribute=model.tokenizer.decode([top]),
                template="the {} is located in city of", relation_id="P131")


@functools.cache
def _edit(model):
    from mechscope.editing import FtConfig, ft_l
    from mechscope.facts import make_request

    request = make_request("located in city of {}", "eiffel tower", "rome", model=model)
    return ft_l(model, [request], config=FtConfig(layer=0, steps=3, norm_constraint=0.05, lr=0.01))


def _fact_factories(model) -> dict[str, object]:
    from mechscope.editing import EvalConfig, EvaluationTable, FtConfig, evaluate_edits
    from mechscope.editing.outcome import edit_outcome
    from mechscope.facts import EditRequest, Fact, Rewrite, known_facts
    from mechscope.tracing import TraceConfig, attention_knockout, attribute_extraction, average_trace, causal_trace

    other = Fact(known_id=1, prompt="when mary and john went to the store", subject="mary and john", attribute="rome")
    facts = lambda: [_known_fact(model), other]  # noqa: E731
    config = TraceConfig(samples=2, window=2)
    rewrite = Rewrite(prompt="located in city of {}", subject="eiffel tower", target_new="rome", target_true="paris")
    request = EditRequest(case_id=0, requested_rewrite=rewrite, paraphrase_prompts=("the city of eiffel tower",),
                          neighborhood_prompts=("located in city of cat",), attribute_prompts=("the colosseum is in",),
                          generation_prompts=("the eiffel tower is",))
    evaluation = functools.cache(lambda: evaluate_edits(
        model, [request], method="ft-l", method_config=FtConfig(layer=0, steps=2, norm_constraint=0.05, lr=0.01),
        config=EvalConfig(generation=False), progress=False))
    return {
        "KnownFacts": lambda: known_facts(model, facts()),
        "CausalTrace": lambda: causal_trace(model, _known_fact(model), config=config),
        "AverageTrace": lambda: average_trace(model, facts(), config=config, progress=False),
        "KnockoutResult": lambda: attention_knockout(model, facts(), window=1),
        "ExtractionResult": lambda: attribute_extraction(model, facts()),
        "Edit": lambda: _edit(model),
        "EditOutcome": lambda: edit_outcome(model, _edit(model), max_new_tokens=2),
        "EditEvaluation": evaluation,
        "EvaluationTable": lambda: EvaluationTable(rows=(evaluation(),)),
    }


def _probe_and_steering_factories(model, task) -> dict[str, object]:
    from mechscope.activations.positions import Position
    from mechscope.probes import ProbeConfig, ProbeData, probe, probe_intervention, probe_layers, sparse_probing
    from mechscope.steering import NeutralText, SweepConfig, steering_sweep, target_words
    from mechscope.steering.generate import steered_text
    from mechscope.steering.pairs import ContrastPairs
    from mechscope.steering.sources import make_vector

    words = (("cat", "dog", "mary", "john"), ("paris", "rome", "berlin", "red"))
    chosen = [words[i % 2][(i // 2) % 4] for i in range(24)]
    data = ProbeData(name="words", texts=tuple(f"the {w} sat on the mat" for w in chosen),
                     labels=torch.tensor([i % 2 for i in range(24)]),
                     positions=tuple(Position(rule="word", word=w) for w in chosen), classes=("animal", "place"))
    config = ProbeConfig(penalties=(1e-2,), shuffles=1)
    found = lambda: probe(model, data, hook_name="blocks.1.hook_resid_post", config=config)  # noqa: E731
    pairs = ContrastPairs(name="places", positive=("the cat sat in paris", "a dog ran to rome"),
                          negative=("the cat sat on the mat", "a dog ran to the store"))
    vector = lambda: make_vector(model, pairs, layers=[0, 1])  # noqa: E731
    texts = [" ".join(WORDS[(i * 7 + j * 5) % len(WORDS)] for j in range(400)) for i in range(4)]
    return {
        "ProbeResult": lambda: probe(model, data, hook_name="blocks.0.hook_resid_post", config=config, k=2),
        "ProbeSweep": lambda: probe_layers(model, data, config=config),
        "SparseProbing": lambda: sparse_probing(model, [data], sae=_sae(model), ks=(1,), config=config),
        "ProbeIntervention": lambda: probe_intervention(model, task, found().direction,
                                                        hook_name="blocks.1.hook_resid_post", n_random=2),
        "SteeredText": lambda: steered_text(model, vector(), "the cat sat on", alpha=2.0, max_new_tokens=3),
        "SteeringSweep": lambda: steering_sweep(model, vector(), target_words(model, ["the cat sat on"], ["paris"]),
                                                NeutralText.of(model, texts, rows=2, seq_len=16),
                                                config=SweepConfig(alphas=(1.0, 4.0), n_random=1, max_kl=5.0)),
    }


@functools.cache
def _records(model):
    """Word-indicator units over activations harvested from the tiny model, their records
    written, and their top-token explanations (the explainer that needs no language model)."""
    from mechscope.activations.harvest import harvest
    from mechscope.autointerp import ExampleConfig, build_records, explain_units, indicator_units, load_all
    from mechscope.autointerp.report import ExplanationSet

    texts = [" ".join(WORDS[(i * 11 + j * 3) % len(WORDS)] for j in range(120)) for i in range(6)]
    config = ExampleConfig(ctx_len=8, n_train_top=2, n_train_quantile=2, n_test=2, n_test_random=2, n_quantiles=2,
                           min_windows=2)
    with tempfile.TemporaryDirectory() as folder:
        store = harvest(model, "blocks.1.mlp.hook_post", texts, Path(folder) / "store", n_tokens=600, seq_len=21,
                        batch_size=8, progress=False)
        units, _ = indicator_units(model.tokenizer, words=("mary", "dog"))
        built = build_records(store, units, range(units.n_units - 2, units.n_units), Path(folder) / "run",
                              tokenizer=model.tokenizer, config=config)
        records = load_all(Path(folder) / "run")
        texts = explain_units(records, backend=None, out_dir=Path(folder) / "run", explainer="top-tokens")
    explained = ExplanationSet(units=tuple(r.name for r in records), texts=texts, explainer="top-tokens", backend={})
    return built, explained


def _autointerp_factories(model) -> dict[str, object]:
    """Records and top-token explanations are computed; scores need a language-model judge,
    so the report and the scorer validation are built by hand."""
    from mechscope.autointerp.report import AutointerpReport, UnitScore, summarise
    from mechscope.autointerp.validate import ScorerValidation

    backend = {"kind": "openai", "model": "judge-1", "base_url": "http://localhost:8000/v1"}
    scores = tuple(UnitScore(unit=unit, scorer=scorer, control=control, explanation=f"the word {unit}",
                             score=score, metrics={"auc": score, "n": 8.0})
                   for unit, score in (("mary", 0.75), ("dog", 0.5))
                   for scorer in ("detection", "fuzzing") for control in ("explanation", "shuffled"))
    scores += (UnitScore(unit="dog", scorer="intruder", control="explanation", explanation="", score=1.0,
                         metrics={"random_key_accuracy": 0.25}),)
    return {
        "RecordsBuilt": lambda: _records(model)[0],
        "ExplanationSet": lambda: _records(model)[1],
        "AutointerpReport": lambda: AutointerpReport(
            units=("mary", "dog"), explanations={"mary": "the word mary", "dog": "the word dog"}, scores=scores,
            summary=summarise(scores), backend=backend, scorers=("detection", "fuzzing", "intruder")),
        "ScorerValidation": lambda: ScorerValidation(
            units=("mary", "dog"), candidates=("the word mary", "the word dog", "random"),
            scores={"detection": [[0.9, 0.2, 0.1], [0.3, 0.8, float("nan")]]},
            margins={"detection": [0.7, 0.5]}, top_rate={"detection": 1.0}, backend=backend),
    }


@functools.cache
def _superposition(kind: str):
    from mechscope.toys.superposition import train_superposition
    from mechscope.toys.superposition_analysis import dimensionality_config, geometry_config, phase_config
    from mechscope.toys.superposition_sae import sae_recovery_config

    configs = {"geometry": geometry_config, "phase": phase_config, "dimensionality": dimensionality_config,
               "sae": sae_recovery_config}
    config = dataclasses.replace(configs[kind](quick=True), steps=10, n_seeds=1, batch_size=64)
    return train_superposition(config, progress=False)


@functools.cache
def _othello():
    """Board probes and an intervention on an untrained one-layer Othello-GPT (their numbers are chance)."""
    from mechscope.toys.othello.game import random_games
    from mechscope.toys.othello.intervene import intervention_experiment
    from mechscope.toys.othello.model import OthelloConfig, othello_model
    from mechscope.toys.othello.probe import board_probes

    model = othello_model(OthelloConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, steps=2, batch_size=4, warmup=1))
    probes = board_probes(model, random_games(5, seed=0), bases=("mine_theirs",))
    edits = intervention_experiment(model, probes.probes["mine_theirs"], random_games(6, seed=1), layers=(1,),
                                    n_cases=4)
    return probes, edits


def _grokking_analysis():
    from mechscope.toys.grokking import GrokkingConfig, train_grokking
    from mechscope.toys.grokking_analysis import analyse_grokking

    config = GrokkingConfig(p=7, d_model=16, n_heads=2, d_mlp=32, steps=4, eval_every=2, snapshot_every=2,
                            checkpoint_every=4)
    with tempfile.TemporaryDirectory() as folder:  # snapshots: the progress measures read them
        return analyse_grokking(train_grokking(config, checkpoint_dir=folder, progress=False), progress=False)


def _formation_analysis():
    from mechscope.toys.formation import FormationConfig, analyse_formation, train_formation

    runs = [train_formation(FormationConfig.quick(attention_only=flag, d_model=16, n_heads=2, d_mlp=32, seq_len=20,
                                                  batch_size=4, steps=6, eval_every=2, n_eval=4),
                            checkpoint_dir=None, progress=False) for flag in (True, False)]
    return analyse_formation(runs)


def _toy_factories(model) -> dict[str, object]:
    """Toys trained for a few steps, then the real analyses; Findings (minutes of training
    for real) is built by hand around real analyses."""
    from mechscope.toys.arithmetic import addition_accuracy
    from mechscope.toys.findings import Findings
    from mechscope.toys.superposition_analysis import analyse_dimensionality, analyse_geometry, analyse_phase_diagram
    from mechscope.toys.superposition_sae import analyse_sae_recovery

    recovery = functools.cache(lambda: analyse_sae_recovery(_superposition("sae"), n_samples=2048, steps=5))
    return {
        "AdditionAccuracy": lambda: addition_accuracy(model, max_result=4, formats=("plain",), progress=False),
        "SuperpositionTraining": lambda: _superposition("geometry"),
        "Geometry": lambda: analyse_geometry(_superposition("geometry")),
        "PhaseDiagram": lambda: analyse_phase_diagram(_superposition("phase")),
        "Dimensionality": lambda: analyse_dimensionality(_superposition("dimensionality")),
        "SAERecovery": recovery,
        "Findings": lambda: Findings(
            name="superposition", quick=True, results={"geometry": analyse_geometry(_superposition("geometry")),
                                                       "sae": recovery()},
            checks={"sparse: all 5 features in a pentagon": False}, numbers={"dense_cosine": 0.25, "phase_0": 3,
                                                                          "gaps": "72.0, 71.5", "missing": None},
            paper={"geometry": "dense: 2 orthogonal features; sparse: pentagon"}),
        "GrokkingAnalysis": _grokking_analysis,
        "FormationAnalysis": _formation_analysis,
        "BoardProbes": lambda: _othello()[0],
        "InterventionResult": lambda: _othello()[1],
    }


def model_for_induction():
    from mechscope.toys import compiled_induction_model

    return compiled_induction_model().model


def _all_result_types() -> set[str]:
    """Every Result subclass mechscope defines (tests may define their own; those don't count)."""
    for info in pkgutil.walk_packages(mechscope.__path__, "mechscope."):
        if ".cli" not in info.name and ".app" not in info.name:
            importlib.import_module(info.name)
    found, todo = set(), list(Result.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("mechscope."):
            found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def test_every_result_type_has_a_round_trip_case(model, task):
    missing = _all_result_types() - set(_factories(model, task)) - set(NOT_STORABLE)
    assert not missing, f"add a factory for {sorted(missing)} to _factories so the store's round trip is tested"


def test_every_result_type_round_trips_exactly(store, model, task):
    run = store.start_run(command="test", model_name=model.name, model_hash="h")
    made = {}
    for name, make in _factories(model, task).items():
        value = make()
        made[name] = value
        store.put_stage(run.id, name, value, key=name, seconds=0.0)
    for name, value in made.items():
        back = store.stage_value(run.id, name)
        assert same(value, back), name
        assert store.stage_plain(run.id, name) == _plain(value), name


def _plain(value):
    import json

    from mechscope.results import to_jsonable

    return json.loads(json.dumps(to_jsonable(value)))


def test_the_codec_keeps_dtypes_nonfinite_floats_and_container_kinds():
    value = {"t": torch.tensor([1.5, float("nan")], dtype=torch.bfloat16), "i": torch.arange(3, dtype=torch.int16),
             "f": float("inf"), "tup": (1, "a"), "set": frozenset({1, 2}), "keys": {(1, 2): 3}}
    data, tensors = encode(value)
    assert same(decode(data, tensors), value)


def test_the_codec_refuses_classes_outside_mechscope_and_unknown_types():
    with pytest.raises(CodecError, match="only hold mechscope's own classes"):
        decode({"__dataclass__": "os:PathLike", "fields": {}}, {})
    with pytest.raises(CodecError, match="cannot store a object"):
        encode(object())


# ---------------------------------------------------------------- recording and reuse
def test_an_identical_stage_is_served_from_the_store_and_equals_the_computation(store, model, task):
    from mechscope.patching import activation_patching

    compute = lambda: activation_patching(model, task, what="heads", progress=False)  # noqa: E731
    with recording(store, command="patch", model=model, task=task, options={"what": "heads"}) as first:
        computed = first.stage("patching", compute)
    with recording(store, command="patch", model=model, task=task, options={"what": "heads"}) as second:
        served = second.stage("patching", lambda: pytest.fail("recomputed a stored stage"))
    assert second.cached == {"patching"} and same(served, computed)
    with recording(store, command="patch", model=model, task=task, options={"what": "resid"}) as other:
        other.stage("patching", lambda: 1)  # other options: computed
    with recording(store, command="patch", model=model, task=task, options={"what": "heads"},
                   use_cache=False) as forced:
        forced.stage("patching", compute)
    assert forced.cached == set()
    runs = store.runs(command="patch")
    assert [r.status for r in runs] == ["complete"] * 4
    assert runs[2].summary["cached_stages"] == ["patching"]


def test_an_interrupted_run_is_marked_and_keeps_its_finished_stages(store, model, task):
    with pytest.raises(KeyboardInterrupt), recording(store, command="x", model=model, task=task) as rec:
        rec.stage("first", lambda: 1.0)
        raise KeyboardInterrupt
    run = store.runs()[0]
    assert run.status == "interrupted" and "Ctrl-C" in run.error
    assert store.stage_value(run.id, "first") == 1.0
    with recording(store, command="x", model=model, task=task) as rec:
        assert rec.stage("first", lambda: pytest.fail("recomputed")) == 1.0


def test_refused_and_failed_runs_are_recorded_with_their_reason(store, model):
    with pytest.raises(RunRefused), recording(store, command="x", model=model):
        raise RunRefused("the model does not do the task")
    with pytest.raises(ZeroDivisionError), recording(store, command="x", model=model):
        1 / 0
    failed, refused = store.runs()
    assert (refused.status, refused.error) == ("refused", "the model does not do the task")
    assert failed.status == "failed" and "ZeroDivisionError" in failed.error


def test_no_store_computes_every_stage(model, task):
    with recording(None, command="x", model=model, task=task) as rec:
        assert rec.stage("a", lambda: 2) == 2
    assert set(rec.seconds) == {"a"}


def _writer(path: str, worker: int, n: int) -> None:
    store = open_store(path)
    for i in range(n):
        run = store.start_run(command="w", model_name=f"m{worker}", model_hash="h", options={"i": i})
        store.put_stage(run.id, "value", torch.full((64,), float(i)), key=f"{worker}-{i}", seconds=0.0)
        store.put_artifact(run.id, "note.txt", f"{worker}-{i}".encode())
        store.finish_run(run.id, status="complete")
    store.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    context = multiprocessing.get_context("fork")  # two OS processes, each with its own connection
    workers = [context.Process(target=_writer, args=(path, w, 15)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0, 0]
    with open_store(path) as store:
        runs = store.runs()
        assert len(runs) == 30 and {r.status for r in runs} == {"complete"}
        for run in runs:
            i = run.options["i"]
            assert torch.equal(store.stage_value(run.id, "value"), torch.full((64,), float(i)))
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ---------------------------------------------------------------- damaged, foreign, newer files
def test_a_damaged_file_gives_one_clear_line(tmp_path):
    path = tmp_path / "results.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError) as caught:
        open_store(path)
    message = str(caught.value)
    assert "\n" not in message and "not a readable mechscope results database" in message and "--store" in message


def test_a_file_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "results.db"
    open_store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="written by a newer mechscope"):
        open_store(path)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        open_store(tmp_path)


# ---------------------------------------------------------------- artifacts, deletion, export
def test_artifacts_are_stored_once_and_deleted_with_the_last_run_using_them(store, model):
    runs = [store.start_run(command="x", model_name="m", model_hash="h") for _ in range(2)]
    digests = {store.put_artifact(run.id, "fig.png", b"same bytes") for run in runs}
    (digest,) = digests
    path = store.artifact_path(digest)
    assert path.read_bytes() == b"same bytes" and digest.endswith(".png")
    store.delete_run(runs[0].id)
    assert path.exists()
    store.delete_run(runs[1].id)
    assert not path.exists() and store.runs() == []


@pytest.mark.parametrize("digest", ["../../etc/passwd", "/etc/passwd", "ab/../../x", "a" * 64 + "/x", "..", ""])
def test_artifact_names_cannot_leave_the_folder(store, digest):
    with pytest.raises(StoreError, match="not an artifact digest"):
        store.artifact_path(digest)


def test_unknown_run_ids_say_how_to_find_one(store):
    with pytest.raises(StoreError, match="mechscope runs list"):
        store.run("nope")


def test_export_writes_the_run_and_its_artifacts(store, tmp_path, model, task):
    with recording(store, command="x", model=model, task=task, options={"n": 2}) as rec:
        rec.stage("report", lambda: {"value": 1.25})
        rec.attach("report.html", b"<html></html>")
    run = store.runs()[0]
    out = store.export_run(run.id, tmp_path / "export")
    assert (out / "report.html").read_bytes() == b"<html></html>"
    import json

    exported = json.loads((out / "run.json").read_text())
    assert exported["run"]["task_name"] == "pairs" and exported["stages"]["report"]["value"] == {"value": 1.25}
