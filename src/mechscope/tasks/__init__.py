"""Behaviours to localize: prompt pairs, answers and a metric."""

from mechscope.tasks.task import METRICS, MetricFn, Task, answer_logits

__all__ = ["METRICS", "MetricFn", "Task", "answer_logits"]
