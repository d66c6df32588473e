"""mechscope toys: one-line errors before any training, and what a run prints and writes
(with a stand-in finding; the real ones are the toys' own tests and benchmarks)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from mechscope.cli.main import app
from mechscope.results import Result
from mechscope.toys import findings as findings_module
from mechscope.toys.findings import FINDINGS, Findings

runner = CliRunner()


@dataclass(frozen=True)
class _Curve(Result):
    values: tuple[float, ...]

    def plot(self):
        from matplotlib.figure import Figure

        fig = Figure()
        fig.add_subplot().plot(self.values)
        return fig


def _fake(*, quick: bool, progress: bool) -> Findings:
    return Findings(name="fake", quick=quick, results={"curve": _Curve(values=(1.0, 2.0))},
                    checks={"it holds (tolerance 0.1)": True, "this one fails": False},
                    numbers={"answer": 0.4242, "layer": 3})


def test_unknown_toy_and_bad_out_fail_in_one_line(tmp_path):
    result = runner.invoke(app, ["toys", "pentagons"])
    assert result.exit_code == 2 and "unknown toy 'pentagons'" in result.output and "superposition" in result.output
    afile = tmp_path / "f"
    afile.write_text("x")
    result = runner.invoke(app, ["toys", "grokking", "--out", str(afile)])
    assert result.exit_code == 2 and "is a file" in result.output
    result = runner.invoke(app, ["toys", "grokking", "--out", str(afile / "sub")])
    assert result.exit_code == 2 and "cannot be created" in result.output


def test_a_run_prints_its_checks_and_writes_json_and_figures(tmp_path, monkeypatch):
    monkeypatch.setitem(findings_module.FINDINGS, "fake", _fake)
    result = runner.invoke(app, ["toys", "fake", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "it holds" in result.output and "this one fails" in result.output and "0.4242" in result.output
    [written] = tmp_path.glob("toys-fake-quick-*.json")
    data = json.loads(written.read_text())
    assert data["checks"]["this one fails"] is False and data["results"]["curve"]["values"] == [1.0, 2.0]
    assert data["options"] == {"name": "fake", "quick": True}
    assert (tmp_path / f"{written.stem}-curve.png").stat().st_size > 1000


def test_quick_and_full_runs_never_overwrite_each_other(tmp_path, monkeypatch):
    monkeypatch.setitem(findings_module.FINDINGS, "fake", _fake)
    for quick in (["--quick"], []):
        result = runner.invoke(app, ["toys", "fake", *quick, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    assert sorted(json.loads(path.read_text())["quick"] for path in tmp_path.glob("toys-fake-*.json")) == [False, True]
    assert len(list(tmp_path.glob("toys-fake-*-curve.png"))) == 2


def test_the_help_names_every_finding():
    result = runner.invoke(app, ["toys", "--help"])
    for name in FINDINGS:
        assert name in result.output


@pytest.mark.slow
def test_superposition_quick_end_to_end(tmp_path):
    result = runner.invoke(app, ["toys", "superposition", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [written] = tmp_path.glob("toys-superposition-quick-*.json")
    data = json.loads(written.read_text())
    assert data["checks"]["sparse: all 5 features in a pentagon (gaps within 10° of 72°)"] is True
    for key in ("geometry", "phase", "dimensionality", "sae"):
        assert (tmp_path / f"{written.stem}-{key}.png").exists()
