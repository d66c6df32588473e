"""The results store: every result type round-trips exactly, stages are reused, two
writers at once lose nothing, and damaged or foreign files give one clear line."""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import pkgutil
import sqlite3

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

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
    scores = edge_attribution_patching(model, task, method="eap", progress=False)
    evaluator = EdgeEvaluator.of(model, task)
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
        "EdgeScores": lambda: scores,
        "Circuit": lambda: Circuit.from_scores(scores.graph, scores.as_dict(), budget=0.1, method="eap"),
        "FaithfulnessCurve": lambda: faithfulness_curve(evaluator, scores.graph, scores.as_dict(), progress=False),
        "FeatureAttribution": lambda: feature_attribution(model, _sae(model), task),
        "FeatureDashboards": lambda: feature_dashboard(model, _sae(model), texts, top=2, seq_len=16, progress=False),
        "SAEEvaluation": lambda: evaluate_sae(model, _sae(model), texts, n_tokens=64, seq_len=16, progress=False),
        "TrainResult": lambda: train_sae(SAEConfig(d_in=8, d_sae=16, architecture="relu"),
                                         TensorSource(torch.randn(64, 8)), TrainConfig(total_steps=2, batch_size=16)),
        "InductionCheck": lambda: verify_induction(model_for_induction(), n_seqs=4),
    }


NOT_STORABLE = {"InductionTraining": "holds the trained model itself; save that with save_pretrained"}


def model_for_induction():
    from mechscope.toys import compiled_induction_model

    return compiled_induction_model().model


def _all_result_types() -> set[str]:
    for info in pkgutil.walk_packages(mechscope.__path__, "mechscope."):
        if ".cli" not in info.name and ".app" not in info.name:
            importlib.import_module(info.name)
    found, todo = set(), list(Result.__subclasses__())
    while todo:
        cls = todo.pop()
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
