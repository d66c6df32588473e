"""The investigation on tiny models: its numbers are the library calls' numbers, its split
never shares prompts, its refusal stops a task the model does not do, the store serves
an identical rerun, and the report renders every section with every string escaped."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from tiny import tiny_hf_model, tiny_tokenizer

from mechscope import HookedModel
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.faithfulness import faithfulness
from mechscope.investigate import InvestigateOptions, investigate, load_investigation
from mechscope.lens.dla import direct_logit_attribution
from mechscope.patching.activation import activation_patching
from mechscope.report import render_investigation
from mechscope.store import open_store
from mechscope.tasks.evaluate import evaluate_task
from mechscope.tasks.split import split_task

WORDS = "cat dog mat red blue big small one two three four five six seven tom alice bob mary john".split()
# Lenient floors: a tiny random model "does" nothing; these tests are about the plumbing.
LENIENT = dict(min_accuracy=0.0, min_gap=-1e9, n=6, patch_prompts=3, exact_layers=1, top_heads=3, role_seqs=2,
               role_seq_len=6, ig_steps=1, minimality_edges=2)


@pytest.fixture(scope="module")
def model() -> HookedModel:
    return HookedModel(tiny_hf_model("llama-gqa"), tiny_tokenizer(), name="llama-gqa")


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    """Twelve pairs of the tiny vocabulary; the first prompt carries markup that must render as text."""
    path = tmp_path_factory.mktemp("tasks") / "pairs.jsonl"
    rows = []
    for i in range(12):
        a, b, c = WORDS[i % len(WORDS)], WORDS[(i + 3) % len(WORDS)], WORDS[(i + 7) % len(WORDS)]
        clean = f"the {a} and the {b} sat on the {c} {'<script>alert(1)</script>' if i == 0 else 'mat'}"
        corrupt = clean.replace(f"the {a} and", f"the {b} and", 1)
        rows.append({"clean": clean, "corrupt": corrupt, "answer": f" {a}", "wrong": f" {b}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def found(model, task_file):
    return investigate(model, task_file, InvestigateOptions(**LENIENT), progress=False)


def test_stage_numbers_are_the_library_calls_numbers(model, task_file, found):
    split = split_task(task_file, model, n=6)
    assert found.behaviour.discovery == evaluate_task(model, split.discovery.with_metric("logit_diff"))
    assert found.behaviour.heldout == evaluate_task(model, split.heldout.with_metric("logit_diff"))
    dla = direct_logit_attribution(model, split.discovery)
    assert torch.allclose(found.where.dla.heads, dla.heads) and abs(found.where.dla.total - dla.total) < 1e-6
    resid = activation_patching(model, split.aligned.subset(slice(0, 3)), what="resid", progress=False)
    assert torch.allclose(found.where.resid.values, resid.values, atol=1e-5)
    heldout = EdgeEvaluator.of(model, split.heldout)
    graph = heldout.graph
    f_heldout = faithfulness(heldout(found.circuit.circuit.edges), heldout(frozenset()), heldout(graph.edges))
    assert abs(found.circuit.check.f_heldout - f_heldout) < 1e-5


def test_report_json_holds_the_investigations_numbers(found):
    data = json.loads(json.dumps(found.to_dict()))
    assert data["circuit"]["check"]["f_heldout"] == pytest.approx(found.circuit.check.f_heldout)
    assert data["behaviour"]["discovery"]["clean_accuracy"] == pytest.approx(found.behaviour.discovery.clean_accuracy)
    assert [c["text"] for c in data["summary"]["claims"]] == [c.text for c in found.summary.claims]
    assert set(data["seconds"]) == {"behaviour", "split", "where", "who", "circuit", "summary"}


def test_split_halves_never_share_prompts(model, task_file):
    split = split_task(task_file, model, n=6)
    assert not set(split.discovery.prompts) & set(split.heldout.prompts)
    assert len(split.discovery) + len(split.heldout) == 12


def test_a_task_the_model_cannot_do_is_refused_with_its_numbers(model, task_file, tmp_path):
    with open_store(tmp_path / "r.db") as store:
        result = investigate(model, task_file, InvestigateOptions(n=6), store=store, progress=False)
        assert result.refused and result.where is None and result.circuit is None
        assert "does not do" in result.behaviour.refusal and "%" in result.behaviour.refusal
        assert "\n" not in result.behaviour.refusal
        (run,) = store.runs()
        assert run.status == "refused" and run.error == result.behaviour.refusal
    assert "Stopped" in render_investigation(result)


def test_an_identical_rerun_is_served_from_the_store_and_equal(model, task_file, tmp_path):
    options = InvestigateOptions(**LENIENT)
    with open_store(tmp_path / "r.db") as store:
        first = investigate(model, task_file, options, store=store, progress=False)
        second = investigate(model, task_file, options, store=store, progress=False)
        assert set(second.cached) == {"behaviour", "split", "where", "who", "circuit", "summary"}
        assert second.to_dict() | {"cached": [], "run_id": ""} == first.to_dict() | {"cached": [], "run_id": ""}
        rebuilt = load_investigation(store, first.run_id)
        assert rebuilt.circuit.check == first.circuit.check and rebuilt.summary == first.summary


def test_the_report_has_every_section_and_escapes_prompts(found):
    html = render_investigation(found)
    for anchor in ("summary", "behaviour", "split", "where", "who", "circuit"):
        assert f'<section id="{anchor}">' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless chromium is not installed (make e2e-setup)")
def test_the_report_renders_in_headless_chromium_without_console_errors(found, tmp_path):  # pragma: no cover
    page = tmp_path / "report.html"
    page.write_text(render_investigation(found))
    run = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = run.stdout
    for anchor in ("summary", "behaviour", "split", "where", "who", "circuit"):
        assert f'id="{anchor}"' in dom
    assert "<script" not in dom.lower()  # the prompt's markup stayed text
    assert "&lt;script&gt;" in dom
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
