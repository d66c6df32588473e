"""Toy models with known circuits: ground truth for circuit-discovery methods.

    from mechscope.toys import InductionConfig, train_induction_model, verify_induction

    trained = train_induction_model(InductionConfig())   # attention-only GPT-2, ~13 s on one core
    check = verify_induction(trained.model)
    check.verified, check.circuit                        # True, InductionCircuit(previous_token_head=(0, h), ...)

    compiled = compiled_induction_model()                # weights set by hand: the circuit is known
    compiled.known_edges                                 # frozenset of Edge, e.g. 'a1.kv2<k> ← a0.0'
"""

from mechscope.toys.compiled import (
    CORRUPTIONS,
    CompiledInduction,
    CompiledLayout,
    compiled_induction_model,
    compiled_induction_task,
    compiled_layout,
)
from mechscope.toys.induction import (
    BOS_ID,
    LOSS_TOKENS,
    InductionBatch,
    InductionConfig,
    InductionTraining,
    attention_only_model,
    induction_batch,
    integer_tokenizer,
    next_token_losses,
    train_induction_model,
)
from mechscope.toys.induction_check import (
    Criteria,
    InductionCheck,
    InductionCircuit,
    ablated_induction_loss,
    induction_pattern_scores,
    k_composition_scores,
    random_k_composition,
    verify_induction,
)

__all__ = [
    "BOS_ID",
    "CORRUPTIONS",
    "CompiledInduction",
    "CompiledLayout",
    "LOSS_TOKENS",
    "Criteria",
    "InductionBatch",
    "InductionCheck",
    "InductionCircuit",
    "InductionConfig",
    "InductionTraining",
    "ablated_induction_loss",
    "attention_only_model",
    "compiled_induction_model",
    "compiled_induction_task",
    "compiled_layout",
    "induction_batch",
    "integer_tokenizer",
    "induction_pattern_scores",
    "k_composition_scores",
    "next_token_losses",
    "random_k_composition",
    "train_induction_model",
    "verify_induction",
]
