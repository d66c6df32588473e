"""smallest_faithful: the smallest rung within the tolerance of f = 1, measured, not assumed."""

from __future__ import annotations

import pytest

from mechscope.circuits.sizing import smallest_faithful
from mechscope.errors import InputError


def counted(curve):
    calls = []

    def f_at(rung):
        calls.append(rung)
        return curve(rung)
    return f_at, calls


def test_finds_the_smallest_rung_reaching_the_tolerance_by_bisection():
    f_at, calls = counted(lambda k: k / 50)  # f = 0.9 first at 45
    choice = smallest_faithful(f_at, 100, tolerance=0.1)
    assert choice.size == 45 and abs(choice.faithfulness - 0.9) < 1e-12 and choice.faithful
    assert len(calls) <= 9 and len(set(calls)) == len(calls)  # log2(100) + 1, nothing measured twice
    assert dict(choice.measured)[45] == choice.faithfulness


def test_an_overshooting_jump_falls_back_to_the_measured_size_closest_to_one():
    choice = smallest_faithful(lambda k: 0.5 if k < 30 else 1.5, 64, tolerance=0.1)
    assert not choice.faithful and abs(choice.faithfulness - 0.5) < 1e-12  # |1 - 0.5| = |1 - 1.5|: smaller wins
    choice = smallest_faithful(lambda k: 0.6 if k < 30 else 1.3, 64, tolerance=0.1)
    assert choice.size >= 30 and abs(choice.faithfulness - 1.3) < 1e-12


def test_a_ladder_that_never_gets_there_gives_its_best_measured_rung():
    choice = smallest_faithful(lambda k: k / 200, 100, tolerance=0.1)
    assert choice.size == 100 and abs(choice.faithfulness - 0.5) < 1e-12 and len(choice.measured) == 1


def test_resolution_and_bad_arguments():
    f_at, calls = counted(lambda k: k / 1000)
    choice = smallest_faithful(f_at, 1000, tolerance=0.1, resolution=16)
    assert 900 <= choice.size <= 916 and len(calls) <= 8
    for kwargs, message in (({"largest": 0}, "at least 1"), ({"largest": 5, "tolerance": 0}, "tolerance"),
                            ({"largest": 5, "resolution": 0}, "at least 1")):
        with pytest.raises(InputError, match=message):
            smallest_faithful(lambda k: 1.0, **kwargs)
