"""Localizing a behaviour by intervening on activations: ablation, activation and path
patching, and their gradient-based estimates (attribution patching)."""

from mechscope.patching.activation import activation_patching, activation_patching_reference
from mechscope.patching.cost import SweepCost, patching_cost
from mechscope.patching.methods import PATCHING_METHODS
from mechscope.patching.result import PatchingResult
from mechscope.patching.specs import SWEEPS, Patch, Sweep, make_sweep

__all__ = [
    "PATCHING_METHODS",
    "SWEEPS",
    "Patch",
    "PatchingResult",
    "Sweep",
    "SweepCost",
    "activation_patching",
    "activation_patching_reference",
    "make_sweep",
    "patching_cost",
]
