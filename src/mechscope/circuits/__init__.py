"""Circuits: the graph of components and edges, scoring edges, evaluating circuits.

::

    from mechscope.circuits import EdgeEvaluator, edge_attribution_patching, faithfulness_curve

    scores = edge_attribution_patching(model, task, method="eap-ig-inputs")   # every edge, one score
    evaluator = EdgeEvaluator.of(model, task, ablation="resample")            # one forward per circuit
    curve = faithfulness_curve(evaluator, scores.graph, scores.as_dict())     # f at MIB's budgets, CPR, CMD
    circuit = Circuit.from_scores(scores.graph, scores.as_dict(), budget=0.05, method="eap-ig")

Modules: :mod:`~.graph` (nodes, receivers, edges), :mod:`~.edge_run` (the one-pass
machinery), :mod:`~.evaluate` (circuits' metrics), :mod:`~.reference` (the slow
edge-by-edge evaluator), :mod:`~.attribution` (EAP, EAP-IG), :mod:`~.exact` (exact
edge scores, minimality), :mod:`~.acdc`, :mod:`~.faithfulness` (f, curves, CPR, CMD),
:mod:`~.circuit` (saving and drawing), :mod:`~.ground_truth` (ROC AUC against known edges).
"""

from mechscope.circuits.acdc import ACDCResult, acdc
from mechscope.circuits.attribution import EdgeScores, edge_attribution_patching
from mechscope.circuits.circuit import Circuit
from mechscope.circuits.evaluate import EdgeEvaluator
from mechscope.circuits.exact import edge_contributions, exact_edge_scores
from mechscope.circuits.faithfulness import BUDGETS, FaithfulnessCurve, area_under, faithfulness, faithfulness_curve
from mechscope.circuits.graph import INPUT, CircuitGraph, Edge, Node, Receiver
from mechscope.circuits.ground_truth import induction_edges, roc_auc
from mechscope.circuits.reference import evaluate_reference

__all__ = ["ACDCResult", "BUDGETS", "INPUT", "Circuit", "CircuitGraph", "Edge", "EdgeEvaluator",
           "EdgeScores", "FaithfulnessCurve", "Node", "Receiver", "acdc", "area_under", "edge_attribution_patching",
           "edge_contributions", "evaluate_reference", "exact_edge_scores", "faithfulness", "faithfulness_curve", "induction_edges", "roc_auc"]
