"""What an investigation does, and how much of it: one frozen, validated configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mechscope.ablations import check_ablation
from mechscope.errors import InputError, check_int


SCORERS = ("nodes", "eap-ig", "eap-ig-activations", "eap")
"""The circuit scorers an investigation can use (``exact`` and ``acdc`` cost too much for it)."""


@dataclass(frozen=True, kw_only=True)
class InvestigateOptions:
    """Settings of :func:`mechscope.investigate.investigate` (``InvestigateOptions.quick()``
    for a first look in about a fifth of the time)."""

    n: int = 32
    """Prompt pairs on each side of the split (discovery and held out)."""
    seed: int = 0
    """Seed of the built-in task's prompts and of the split."""
    metric: str | None = None
    """The task metric (None: the task's own, see :func:`mechscope.tasks.resolve_task`)."""
    heldout: str | None = None
    """A task file of held-out prompts (default: split the task itself)."""
    min_accuracy: float = 0.25
    """Stage 1 refuses when fewer clean prompts than this have the answer as top token..."""
    min_gap: float = 1.0
    """... or when the clean logit difference exceeds the corrupted one by less than this
    (the corruption does not remove the behaviour)."""
    patch_prompts: int = 8
    """Discovery prompts used by the sweeps by layer × position (residual patching)."""
    top_heads: int = 8
    """Heads followed from "where" into "who" (and confirmed by exact patching)."""
    grad_drop: bool = True
    """AtP* with GradDrop (Kramár et al.): one more backward pass per layer, fewer missed
    heads; the quick preset leaves it out (AtP with the QK fix only)."""
    exact_layers: int = 4
    """Layers (those of the top AtP* heads) whose heads are patched exactly to confirm AtP*."""
    role_seqs: int = 8
    """Repeated random sequences the head-role scores average over."""
    role_seq_len: int = 40
    """Random tokens in each half of those sequences."""
    circuit_method: str = "nodes"
    """How edges are scored (a name of :data:`mechscope.circuits.discover.CIRCUIT_METHODS`
    but ``exact`` and ``acdc``): by default heads and MLPs by integrated gradients, each
    edge taking the smaller score of its two ends, so that the circuit is the one the
    best nodes induce (the candidate that held out of sample in ``benchmarks/circuit_holdout.py``)."""
    ig_steps: int = 5
    """Integration steps of the node scores and of EAP-IG."""
    circuit_prompts: int | None = None
    """Discovery prompts the edge scores use (None: all of them)."""
    ablation: str = "resample"
    """What an ablated edge carries: resample, mean or zero."""
    tolerance: float = 0.1
    """The circuit is the smallest one whose faithfulness on discovery prompts is within
    this of 1 ..."""
    max_budget: float = 0.05
    """... within this fraction of the edges (else the best circuit at this budget)."""
    minimality_edges: int = 8
    """Strongest and weakest circuit edges whose removal is measured one by one."""
    features_top: int = 8
    """Features shown per SAE."""
    sae: tuple[str, ...] = ()
    """SAE directories (SAELens layout) whose features are attributed."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sae", tuple(str(s) for s in self.sae))
        for name, least in (("n", 2), ("seed", 0), ("patch_prompts", 1), ("top_heads", 1), ("exact_layers", 1),
                            ("role_seqs", 1), ("role_seq_len", 2), ("ig_steps", 1), ("minimality_edges", 0),
                            ("features_top", 1)):
            check_int(f"InvestigateOptions.{name}", getattr(self, name), minimum=least)
        check_int("InvestigateOptions.circuit_prompts", self.circuit_prompts, minimum=1, optional=True)
        if not 0 <= self.min_accuracy <= 1:
            raise InputError(f"InvestigateOptions.min_accuracy must be in [0, 1]; received {self.min_accuracy!r}")
        if not 0 < self.max_budget <= 1:
            raise InputError(f"InvestigateOptions.max_budget must be in (0, 1]; received {self.max_budget!r}")
        if not 0 < self.tolerance < 1:
            raise InputError(f"InvestigateOptions.tolerance must be in (0, 1); received {self.tolerance!r}")
        check_ablation(self.ablation, "InvestigateOptions.ablation")
        if self.circuit_method not in SCORERS:
            raise InputError(f"InvestigateOptions.circuit_method must be one of {', '.join(SCORERS)}; "
                             f"received {self.circuit_method!r}")

    @classmethod
    def quick(cls, **changes) -> InvestigateOptions:
        """Fewer prompts, steps and sequences: a first look."""
        return cls(**{**dict(n=12, patch_prompts=4, grad_drop=False, exact_layers=2, role_seqs=4, role_seq_len=20,
                              ig_steps=2,
                              minimality_edges=4), **changes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
