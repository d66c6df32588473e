"""evaluate_task: batched answer logits and metrics agree with the Task's own metric_fn."""

from __future__ import annotations

import pytest
import torch

from mechscope.errors import InputError
from mechscope.tasks.evaluate import TaskReport, batched_answer_logits, evaluate_task, metric_values
from mechscope.tasks.ioi import ioi
from mechscope.tasks.task import METRICS, answer_logits


@pytest.fixture(scope="module")
def task(words):
    return ioi(words, n=10, mix_templates=True)  # left padding: answer positions differ per prompt


def test_batched_logits_match_one_batch(words, task):
    one = answer_logits(words, task.clean)
    for batch_size in (3, 64):
        torch.testing.assert_close(batched_answer_logits(words, task.clean, batch_size), one, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("metric", METRICS)
def test_metric_values_agree_with_metric_fn(words, task, metric):
    task = task.with_metric(metric)
    clean, corrupt = answer_logits(words, task.clean), answer_logits(words, task.corrupt)
    fast_clean, fast_corrupt = metric_values(task, clean, corrupt)
    reference = task.metric_fn(words)  # slow path: measures its own baselines
    torch.testing.assert_close(fast_clean, reference(clean), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast_corrupt, reference(corrupt), atol=1e-5, rtol=1e-4)


def test_report_fields(words, task, tmp_path):
    report = evaluate_task(words, task, batch_size=4)
    clean = answer_logits(words, task.clean)
    rows = torch.arange(len(task))
    assert isinstance(report, TaskReport) and report.n == 10 and report.task == "ioi"
    assert report.clean_accuracy == pytest.approx(float((clean.argmax(-1) == task.answers).float().mean()))
    diff = clean[rows, task.answers] - clean[rows, task.wrong]
    assert report.margin_accuracy == pytest.approx(float((diff > 0).float().mean()))
    assert report.clean_metric == pytest.approx(float(diff.mean()), abs=1e-5)
    normalized = evaluate_task(words, task.with_metric("normalized"))
    assert abs(normalized.clean_metric - 1) < 1e-5 and abs(normalized.corrupt_metric) < 1e-5
    assert report.save(tmp_path / "r.json").read_text().count('"clean_accuracy"') == 1


def test_bad_batch_size(words, task):
    with pytest.raises(InputError, match="batch_size must be a positive integer; received 0"):
        evaluate_task(words, task, batch_size=0)
