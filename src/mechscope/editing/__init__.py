"""Model editing: ROME, MEMIT and the FT-L baseline, with CounterFact-style evaluation.

    request = make_request("{} is located in the city of", "The Eiffel Tower", "Rome", model=model)
    edit = edit_model(model, [request], method="rome")     # layer chosen by causal tracing
    with edited(model, edit):
        model("The Eiffel Tower is located in the city of")
    save_edit(edit, "eiffel.safetensors")
    evaluate_edits(model, make_requests(known_facts(model).facts, n=100), method="rome").summary()
"""

from mechscope.editing.covariance import (
    CovarianceConfig,
    KeyStatistics,
    entity_sentences,
    key_covariance,
    key_covariances,
)
from mechscope.editing.edit import Edit, LayerUpdate, edited, load_edit, save_edit
from mechscope.editing.evaluate import EvalConfig, evaluate_edits, reference_texts
from mechscope.editing.ft import FtConfig, ft_l
from mechscope.editing.layer import LayerChoice, choose_edit_layer
from mechscope.editing.memit import MemitConfig, memit
from mechscope.editing.methods import EDIT_METHODS, edit_model
from mechscope.editing.rome import RomeConfig, rome
from mechscope.editing.scores import CaseScores, EditEvaluation, EvaluationTable
from mechscope.editing.values import ValueConfig

__all__ = [
    "EDIT_METHODS",
    "CaseScores",
    "CovarianceConfig",
    "Edit",
    "EditEvaluation",
    "EvalConfig",
    "EvaluationTable",
    "FtConfig",
    "KeyStatistics",
    "LayerChoice",
    "LayerUpdate",
    "MemitConfig",
    "RomeConfig",
    "ValueConfig",
    "choose_edit_layer",
    "edit_model",
    "edited",
    "entity_sentences",
    "evaluate_edits",
    "ft_l",
    "key_covariance",
    "key_covariances",
    "load_edit",
    "memit",
    "reference_texts",
    "rome",
    "save_edit",
]
