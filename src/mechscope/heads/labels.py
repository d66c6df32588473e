"""Which roles a head clearly plays, from its role scores: the words a report puts next to it.

::

    labels = head_labels(roles, movers, ["L23H0", "L17H3"])
    labels["L23H0"]        # (("mover", 0.70), ("copying", 0.41))

A head gets a role when its score reaches :data:`THRESHOLD` and at least
:data:`OVER_BASELINE` times what a head without the role scores (``roles.baselines``);
roles are listed strongest first. Mover roles come from the task itself
(:mod:`~mechscope.heads.movers`): ``mover`` (attends to the answer and copies it) and
``suppressor`` (attends to the answer and writes it down).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from mechscope.heads.movers import MoverScores
from mechscope.heads.roles import SCORES, HeadRoles

THRESHOLD = 0.3
"""Smallest score that names a role."""
OVER_BASELINE = 3.0
"""A role's score must also be this many times the no-role baseline."""
ROLE_NAMES = {"previous_token": "previous-token", "duplicate_token": "duplicate-token", "induction": "induction",
              "copying": "copying", "copy_suppression": "copy suppression", "successor": "successor"}


def parse_head(name: str) -> tuple[int, int]:
    """``L9H6`` → (9, 6)."""
    layer, head = name[1:].split("H")
    return int(layer), int(head)


def head_labels(roles: HeadRoles, movers: MoverScores | None, heads: Iterable[str]) -> dict[str, tuple[tuple[str, float], ...]]:
    """The clear roles of each head in ``heads`` (names like ``L9H6``), strongest first."""
    labels = {}
    for name in heads:
        layer, head = parse_head(name)
        found = []
        for score in SCORES:
            value = float(getattr(roles, score)[layer, head])
            if not math.isnan(value) and value >= THRESHOLD and value >= OVER_BASELINE * roles.baselines[score]:
                found.append((ROLE_NAMES[score], value))
        if movers is not None and movers.n_prompts:
            attention = float(movers.attention[layer, head])
            if float(movers.mover[layer, head]) >= THRESHOLD:
                found.append(("mover", float(movers.mover[layer, head])))
            elif attention >= THRESHOLD and float(movers.suppressing[layer, head]) >= 0.5:
                found.append(("suppressor", attention * float(movers.suppressing[layer, head])))
        labels[name] = tuple(sorted(found, key=lambda item: -item[1]))
    return labels
