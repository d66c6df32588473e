"""Circuits: the graph of components and edges, circuits as results, and their faithfulness.

Discovery methods (EAP, EAP-IG, ACDC) and the one-pass circuit evaluator are not built
yet; :func:`~mechscope.circuits.faithfulness.faithfulness_curve` takes any evaluator.
"""

from mechscope.circuits.circuit import Circuit
from mechscope.circuits.faithfulness import BUDGETS, FaithfulnessCurve, area_under, faithfulness, faithfulness_curve
from mechscope.circuits.graph import INPUT, CircuitGraph, Edge, Node, Receiver

__all__ = ["BUDGETS", "INPUT", "Circuit", "CircuitGraph", "Edge", "FaithfulnessCurve", "Node", "Receiver",
           "area_under", "faithfulness", "faithfulness_curve"]
