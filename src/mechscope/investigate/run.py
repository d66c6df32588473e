"""``investigate(model, task)``: from a behaviour to a verified explanation, stage by stage.

::

    from mechscope.investigate import investigate, InvestigateOptions

    found = investigate(model, "ioi", InvestigateOptions(n=32))
    found.summary.claims[0].text
    found.circuit.check.f_heldout
    found.save("report.json")

Stages (each a call of library techniques, see :mod:`~.steps`): behaviour (refuses a
task the model does not do) → split (discovery / held-out prompts) → where (lens, DLA,
residual patching, AtP* confirmed exactly) → who (roles of the top heads) → circuit
(edge scores, faithfulness curve, smallest faithful circuit, held-out check, complement,
minimality) → features (with SAEs) → summary. With a results ``store``, each stage is
recorded with its wall time, and an identical stage is served from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mechscope.errors import InputError
from mechscope.investigate import steps
from mechscope.investigate.options import InvestigateOptions
from mechscope.investigate.stages import Behaviour, CircuitStage, Features, SplitSummary, Where, Who
from mechscope.investigate.summary import Summary, summarize
from mechscope.results import Result
from mechscope.store.recorder import Recorder, recording
from mechscope.tasks.split import TaskSplit, split_task

STAGES = ("behaviour", "split", "where", "who", "circuit", "features", "summary")
"""Stage names, in order (``features`` only with SAEs)."""

OnStage = Callable[[str, str, float], None]
"""``on_stage(stage, event, seconds)`` with event ``start``, ``done`` or ``cached``."""


@dataclass(frozen=True, kw_only=True)
class Investigation(Result):
    """Everything one investigation found, with each stage's wall time."""

    model_name: str
    task_name: str
    options: dict
    """The :class:`InvestigateOptions` used."""
    behaviour: Behaviour
    split: SplitSummary
    summary: Summary
    where: Where | None = None
    """None when stage 1 refused the task (and for the later stages below)."""
    who: Who | None = None
    circuit: CircuitStage | None = None
    features: Features | None = None
    """None without SAEs."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage (as first computed, for stages served from the store)."""
    cached: tuple[str, ...] = ()
    """Stages served from the results store."""
    run_id: str = ""
    """The run's id in the results store ("" without one)."""

    @property
    def refused(self) -> bool:
        return bool(self.behaviour.refusal)


def investigate(model, task: str, options: InvestigateOptions | None = None, *, store=None, use_cache: bool = True,
                progress: bool = True, on_stage: OnStage | None = None) -> Investigation:
    """Investigate built-in task or task file ``task`` on ``model`` (see the module docstring).

    A refused task returns an Investigation with only the behaviour stage and the reason
    (``refused`` is True); the run is stored as ``refused``."""
    opts = options or InvestigateOptions()
    if not isinstance(task, str):
        raise InputError(f"investigate takes a task name or file path (it splits the prompts itself); "
                         f"received {type(task).__name__}")
    split = split_task(task, model, n=opts.n, seed=opts.seed, metric=opts.metric, heldout=opts.heldout)
    with recording(store, command="investigate", model=model, task=split.discovery, options=opts.to_dict(),
                   seeds={"task": opts.seed}, use_cache=use_cache) as recorder:
        found = _run_stages(model, split, opts, _Stages(recorder, on_stage or (lambda *_: None)), progress)
        result = Investigation(model_name=model.name, task_name=split.discovery.name, options=opts.to_dict(),
                               seconds=dict(recorder.seconds), cached=tuple(sorted(recorder.cached)),
                               run_id=recorder.run.id if recorder.run else "", **found)
        recorder.summary.update(_headline(result))
        recorder.refusal = result.behaviour.refusal
    return result


def _run_stages(model, split: TaskSplit, opts: InvestigateOptions, run: _Stages, progress: bool) -> dict:
    behaviour = run("behaviour", lambda: steps.behaviour(model, split, opts))
    summary_of_split = run("split", lambda: steps.split_summary(split))
    if behaviour.refusal:
        summary = run("summary", lambda: summarize(model.name, split.discovery.name, behaviour))
        return dict(behaviour=behaviour, split=summary_of_split, summary=summary)
    where = run("where", lambda: steps.where(model, split, opts, progress=progress))
    who = run("who", lambda: steps.who(model, split, where, opts))
    circuit = run("circuit", lambda: steps.circuit(model, split, opts, who, progress=progress))
    features = run("features", lambda: steps.features(model, split, opts, progress=progress)) if opts.sae else None
    summary = run("summary", lambda: summarize(model.name, split.discovery.name, behaviour, split, where, who,
                                               circuit, features))
    return dict(behaviour=behaviour, split=summary_of_split, where=where, who=who, circuit=circuit,
                features=features, summary=summary)


class _Stages:
    """Runs a stage through the recorder, telling ``on_stage`` when it starts and ends."""

    def __init__(self, recorder: Recorder, on_stage: OnStage) -> None:
        self.recorder, self.on_stage = recorder, on_stage

    def __call__(self, name: str, compute):
        self.on_stage(name, "start", 0.0)
        start = time.perf_counter()
        value = self.recorder.stage(name, compute)
        event = "cached" if name in self.recorder.cached else "done"
        self.on_stage(name, event, self.recorder.seconds.get(name, time.perf_counter() - start))
        return value


def _headline(found: Investigation) -> dict:
    """A few numbers for run lists and comparisons."""
    out = {"clean_accuracy": found.behaviour.discovery.clean_accuracy, "refused": found.refused}
    if found.circuit is not None:
        check = found.circuit.check
        out |= {"circuit_edges": check.n_edges, "circuit_fraction": check.fraction, "f": check.f_discovery,
                "f_heldout": check.f_heldout, "complement_f": check.complement_f}
    if found.where is not None:
        out["top_heads"] = list(found.where.top_heads[:5])
    return out


def load_investigation(store, run_id: str) -> Investigation:
    """The Investigation of a stored run, rebuilt from its stages."""
    stages = {s.name for s in store.stages(run_id)}
    values = {name: store.stage_value(run_id, name) for name in STAGES if name in stages}
    run = store.run(run_id)
    return Investigation(model_name=run.model_name, task_name=run.task_name, options=run.options,
                         seconds={s.name: s.seconds for s in store.stages(run_id)},
                         cached=tuple(s.name for s in store.stages(run_id) if s.cached), run_id=run_id,
                         **{k: values.get(k) for k in ("behaviour", "split", "summary", "where", "who", "circuit",
                                                       "features")})

