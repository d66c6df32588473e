"""Behaviours to localize: prompt pairs, answers and a metric.

    task = make_task("ioi", model, n=32, seed=0)          # or a .jsonl/.csv path
    evaluate_task(model, task)                            # clean accuracy, mean metric
"""

from mechscope.tasks.evaluate import TaskReport, evaluate_task
from mechscope.tasks.factual import factual
from mechscope.tasks.greater_than import greater_than
from mechscope.tasks.induction import induction
from mechscope.tasks.io import load_task, save_task
from mechscope.tasks.ioi import ioi
from mechscope.tasks.registry import TASKS, make_task
from mechscope.tasks.sva import sva
from mechscope.tasks.task import METRICS, MetricFn, Task, answer_logits

__all__ = [
    "METRICS",
    "TASKS",
    "MetricFn",
    "Task",
    "TaskReport",
    "answer_logits",
    "evaluate_task",
    "factual",
    "greater_than",
    "induction",
    "ioi",
    "load_task",
    "make_task",
    "save_task",
    "sva",
]
