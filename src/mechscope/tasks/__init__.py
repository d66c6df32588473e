"""Behaviours to localize: prompt pairs, answers and a metric.

    task = make_task("ioi", model, n=32, seed=0)          # or a .jsonl/.csv path
    evaluate_task(model, task)                            # clean accuracy, mean metric

Each built-in generator lives in its own module (``mechscope.tasks.ioi.ioi`` …);
``make_task`` reaches them by name.
"""

from mechscope.tasks.evaluate import TaskReport, evaluate_task
from mechscope.tasks.io import load_task, save_task
from mechscope.tasks.registry import TASKS, check_task, make_task, resolve_task
from mechscope.tasks.task import METRICS, MetricFn, Task, answer_logits

__all__ = [
    "METRICS",
    "TASKS",
    "MetricFn",
    "Task",
    "TaskReport",
    "answer_logits",
    "check_task",
    "evaluate_task",
    "load_task",
    "make_task",
    "resolve_task",
    "save_task",
]
