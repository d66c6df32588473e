"""The stages of an investigation, each a composition of library calls returning a stored result.

behaviour → split → where → who → circuit → features. Nothing is computed here that a
technique module does not compute; a stage only chooses what to call on which prompts
(discovery prompts for every claim, held-out prompts for the checks).
"""

from __future__ import annotations

from dataclasses import dataclass

from mechscope.circuits.attribution import EdgeScores
from mechscope.circuits.check import CircuitCheck
from mechscope.circuits.circuit import Circuit
from mechscope.circuits.faithfulness import FaithfulnessCurve
from mechscope.circuits.view import NodeView
from mechscope.heads.movers import MoverScores
from mechscope.heads.roles import HeadRoles
from mechscope.lens.dla import DLAResult
from mechscope.lens.logit_lens import LogitLensResult
from mechscope.patching.agreement import EstimateAgreement
from mechscope.patching.result import PatchingResult
from mechscope.results import Result
from mechscope.sae.attribution import FeatureAttribution
from mechscope.sae.dashboard import FeatureDashboards
from mechscope.tasks.evaluate import TaskReport


@dataclass(frozen=True, kw_only=True)
class Behaviour(Result):
    """Does the model do the task? Measured on both sides of the split, in logit difference."""

    discovery: TaskReport
    heldout: TaskReport
    min_accuracy: float
    min_gap: float
    refusal: str
    """Why the investigation stops here, or "" when the behaviour is there."""

    @property
    def gap(self) -> float:
        """Clean minus corrupted logit difference on the discovery prompts."""
        return self.discovery.clean_metric - self.discovery.corrupt_metric


@dataclass(frozen=True, kw_only=True)
class SplitSummary(Result):
    """How the prompts were divided between discovery and held-out checks."""

    how: str
    n_discovery: int
    n_heldout: int
    n_aligned: int
    discovery_examples: tuple[tuple[str, str], ...]
    """A few (clean, corrupted) discovery prompts."""
    heldout_examples: tuple[tuple[str, str], ...]
    shared_prompts: int
    """Clean prompts on both sides (0: checked when splitting)."""


@dataclass(frozen=True, kw_only=True)
class Where(Result):
    """Where the behaviour lives: readouts by layer, components, positions."""

    lens: LogitLensResult
    """Logit lens of the first aligned discovery prompt, following its answer."""
    dla: DLAResult
    """Direct logit attribution of every head and MLP (discovery prompts)."""
    resid: PatchingResult
    """Residual stream patching by layer × position (aligned prompts, denoising)."""
    atp: PatchingResult
    """AtP* estimate of every head's effect (all positions)."""
    exact: PatchingResult
    """Exact patching of every head in the layers of the top AtP* heads."""
    agreement: EstimateAgreement
    """AtP* against exact patching on those layers."""
    top_heads: tuple[str, ...]
    """The heads with the largest exact effects, strongest first (``L9H6``)."""
    head_effects: dict[str, float]
    """Exact effect of each top head (change of the metric when it alone is restored)."""


@dataclass(frozen=True, kw_only=True)
class Who(Result):
    """What the top heads do, each role with the score that supports it."""

    roles: HeadRoles
    """Role scores of every head on repeated random tokens."""
    movers: MoverScores
    """Mover scores on the discovery prompts."""
    labels: dict[str, tuple[tuple[str, float], ...]]
    """For each top head, the roles it scores clearly on, as (role, score)."""


@dataclass(frozen=True, kw_only=True)
class CircuitStage(Result):
    """The circuit, how it was chosen, and how well it holds."""

    scores: EdgeScores
    """Every edge's score on the discovery prompts."""
    curve: FaithfulnessCurve
    """f of the top-k circuits by signed score at MIB's budgets (its area is CPR)."""
    circuit: Circuit
    """The chosen circuit (scores of its own edges only; all scores are in ``scores``)."""
    tolerance: float
    """The circuit is the smallest whose f on discovery prompts is within this of 1..."""
    reached: bool
    """... and whether one within the budget was (else the largest allowed is shown)."""
    selection: str
    """How the circuit was cut from the ranked scores (``faithful``: the smallest within tolerance)."""
    check: CircuitCheck
    """Faithfulness on discovery and held-out prompts, completeness, minimality."""
    view: NodeView
    """The node-level picture."""


@dataclass(frozen=True, kw_only=True)
class SAEFeatures(Result):
    """Features of one SAE that the behaviour uses."""

    path: str
    attribution: FeatureAttribution
    dashboards: FeatureDashboards
    """Dashboards of the top features by |attribution|."""


@dataclass(frozen=True, kw_only=True)
class Features(Result):
    """Feature attribution for each SAE given."""

    saes: tuple[SAEFeatures, ...]
