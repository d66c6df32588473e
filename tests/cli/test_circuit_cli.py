"""mechscope circuit: discovery, the circuit as JSON and SVG, faithfulness as JSON; one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tiny import CLEAN, CORRUPT, tiny_hf_model, tiny_tokenizer
from typer.testing import CliRunner

from mechscope.circuits import BUDGETS, Circuit
from mechscope.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("circuit")
    model_dir = root / "tiny-gpt2"
    tiny_hf_model("gpt2").save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    rows = [{"clean": c, "corrupt": k, "answer": a, "wrong": w}
            for c, k, a, w in zip(CLEAN, CORRUPT, [" mary", " tom", " eiffel"], [" john", " alice", " paris"])]
    task_file = root / "pairs.jsonl"
    task_file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return str(model_dir), str(task_file), root / "out"


def run(files, *args):
    model_dir, task_file, out = files
    return runner.invoke(app, ["circuit", model_dir, "--task", task_file, *args, "--out", str(out), "--no-progress"])


def outputs(result) -> tuple[Circuit, str, dict]:
    """The circuit, SVG and faithfulness the command said it wrote."""
    paths = [Path(line.split("wrote ", 1)[1]) for line in result.stdout.splitlines() if line.startswith("wrote ")]
    circuit, svg, curve = (next(p for p in paths if p.name.startswith(prefix) and p.suffix == suffix)
                           for prefix, suffix in (("circuit-", ".json"), ("circuit-", ".svg"), ("faithfulness-", ".json")))
    return Circuit.load(circuit), svg.read_text(), json.loads(curve.read_text())


@pytest.mark.parametrize("args", [["--method", "eap"], ["--method", "eap-ig", "--steps", "2"]])
def test_gradient_methods_write_circuit_svg_and_curve(files, args):
    result = run(files, *args, "--budget", "0.05")
    assert result.exit_code == 0, result.output
    method = args[1]
    circuit, svg, data = outputs(result)
    n_edges = circuit.graph.n_edges
    assert circuit.method == method and len(circuit.edges) == round(0.05 * n_edges)
    assert len(circuit.scores) == n_edges
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert data["type"] == "FaithfulnessCurve" and data["budgets"] == list(BUDGETS) and len(data["faithfulness"]) == 10
    assert math.isfinite(data["cpr"]) and math.isfinite(data["cmd"]) and abs(data["faithfulness"][-1] - 1) < 1e-6
    assert data["method"] == method and data["steps"] == (2 if method == "eap-ig" else None)
    # The circuit is the curve's circuit at the same budget: the same edges, so the same metric.
    own = data["circuit"]
    assert abs(own["metric"] - data["metric"][BUDGETS.index(0.05)]) < 1e-6
    gap = data["m_full"] - data["m_empty"]
    assert abs(own["complement_faithfulness"] - (own["complement_metric"] - data["m_empty"]) / gap) < 1e-6
    printed = " ".join(result.stdout.split())
    assert f"{len(circuit.edges)} / {n_edges}" in printed and "CPR" in printed and "f ≥ 0.8" in printed
    assert f"|1 − f| {abs(1 - own['faithfulness']):.3f}" in printed
    assert f"circuit-{method}-pairs-tiny-gpt2-" in printed and data["options"]["budget"] == 0.05
    assert "score &gt; 0: removing the edge raises the metric" in svg  # the colour legend


def test_the_default_is_the_smallest_faithful_node_circuit_within_the_budget(files):
    from mechscope.circuits.graph import INPUT
    from mechscope.circuits.nodes import node_edges

    result = run(files, "--steps", "2")
    assert result.exit_code == 0, result.output
    circuit, svg, data = outputs(result)
    assert circuit.method == "nodes" and data["method"] == "nodes" and data["steps"] == 2
    n_edges = circuit.graph.n_edges
    assert 0 < len(circuit.edges) <= round(0.05 * n_edges) and len(circuit.scores) == n_edges
    # The circuit its nodes induce: every edge from a kept node (or the input) into a kept node or the logits.
    assert circuit.edges == node_edges(circuit.graph, {e.sender for e in circuit.edges} - {INPUT})
    assert "smallest with |1 − f| ≤ 0.1" in " ".join(result.stdout.split())
    assert math.isfinite(data["circuit"]["faithfulness"]) and svg.startswith("<svg")


def test_acdc_keeps_what_its_threshold_leaves(files):
    result = run(files, "--method", "acdc", "--threshold", "0.001")
    assert result.exit_code == 0, result.output
    circuit, svg, data = outputs(result)
    assert circuit.method == "acdc" and data["threshold"] == 0.001 and data["budget"] is None
    assert data["circuit"]["n_edges"] == len(circuit.edges) and svg.startswith("<svg")
    assert math.isfinite(data["cpr"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "0"], "--budget is a fraction of the edges in (0, 1]; received 0.0"),
        (["--budget", "1.5"], "--budget is a fraction of the edges in (0, 1]; received 1.5"),
        (["--method", "magic"], "unknown --method 'magic'; expected one of nodes, eap, eap-ig, eap-ig-activations, exact, acdc"),
        (["--method", "eap-ig", "--steps", "0"], "--steps must be at least 1; received 0"),
        (["--method", "acdc", "--threshold", "-0.1"], "--threshold must be a number >= 0; received -0.1"),
        (["--method", "eap", "--steps", "3"], "--steps applies to nodes and eap-ig and eap-ig-activations"),
        (["--method", "eap", "--threshold", "0.1"], "--threshold applies to acdc"),
        (["--method", "acdc", "--budget", "0.1"], "--budget does not apply to acdc"),
        (["--ablation", "noise"], "unknown --ablation 'noise'; expected one of resample, mean, zero"),
        (["--metric", "logit-diff"], "unknown --metric 'logit-diff'; expected one of logit_diff"),
        (["--method", "eap", "--metric", "kl"], "--method eap scores every edge 0 under --metric kl"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(files, args, message):
    result = run(files, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_budget_is_refused_before_the_model_loads(tmp_path):
    result = runner.invoke(app, ["circuit", "no-such-model", "--budget", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--budget is a fraction" in result.stderr and "unknown model" not in result.stderr


def test_prompts_of_different_lengths_are_refused(files, tmp_path):
    model_dir, _, out = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"clean": "the cat sat", "corrupt": "the big red dog sat", "answer": " on",
                               "wrong": " red"}) + "\n")
    result = runner.invoke(app, ["circuit", model_dir, "--task", str(bad), "--method", "eap", "--out", str(out)])
    assert result.exit_code == 2
    assert "pair 0: the clean prompt has" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_circuits_of_different_budgets_or_ablations_never_overwrite_each_other(files, tmp_path):
    model_dir, task_file, _ = files
    options = []
    for args in (["--budget", "0.05"], ["--budget", "0.1"], ["--budget", "0.05", "--ablation", "mean"]):
        result = runner.invoke(app, ["circuit", model_dir, "--task", task_file, "--method", "eap", *args,
                                     "--out", str(tmp_path), "--no-progress", "--no-store"])
        assert result.exit_code == 0, result.output
        options.append(outputs(result)[2]["options"])
    assert len(list(tmp_path.glob("circuit-*.json"))) == len(list(tmp_path.glob("faithfulness-*.json"))) == 3
    assert [(o["budget"], o["ablation"]) for o in options] == [(0.05, "resample"), (0.1, "resample"), (0.05, "mean")]


def test_cpr_is_not_called_better_when_f_passes_1(files):
    """Past f = 1 the circuit leaves out edges working against the answer: the summary says so."""
    from mechscope.cli.circuit import _print_summary

    class Curve:
        m_full, m_empty, budgets, n_edges, cmd = 1.0, 0.0, (0.5, 1.0), (5, 10), 0.2
        faithfulness = (1.4, 1.0)
        cpr = 1.2

        def smallest_budget(self, at_least):
            return 0.5

    curve = Curve()

    class Found:
        class graph:
            n_edges = 10

    class Task:
        name, metric = "t", "logit_diff"

    own = {"n_edges": 5, "fraction": 0.5, "metric": 1.4, "faithfulness": 1.4, "complement_metric": 0.1,
           "complement_faithfulness": 0.1}
    from mechscope.cli.common import out

    width, out.width = out.width, 300  # one table row per line
    try:
        with out.capture() as captured:
            _print_summary("m", Task, "how", Found, curve, curve, own)
    finally:
        out.width = width
    printed = " ".join(captured.get().split())
    assert "f passes 1, so higher is not better" in printed and "higher is better" not in printed.replace(
        "higher is not better", "")
    assert "|1 − f| 0.400" in printed
