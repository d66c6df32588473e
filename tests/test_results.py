"""Writing files atomically: a reader sees the old file or the new one, never part of one."""

from __future__ import annotations

import os

import pytest
from matplotlib.figure import Figure

from mechscope.results import write_bytes_atomic, write_json, write_text_atomic
from mechscope.viz import save_figure


def test_a_write_replaces_the_file_and_leaves_no_temporary_behind(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    assert path.read_text() == "second" and os.listdir(path.parent) == ["out.txt"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    write_json(path, {"kept": True})

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomic(path, b"{broken")
    assert path.read_text().startswith('{\n "kept": true') and os.listdir(tmp_path) == ["out.json"]


def test_figures_are_saved_whole_in_the_format_their_suffix_names(tmp_path, monkeypatch):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    png, svg = save_figure(fig, tmp_path / "a.png"), save_figure(fig, tmp_path / "a.svg")
    assert png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in svg.read_bytes()[:400]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and sorted(os.listdir(tmp_path)) == ["a.png", "a.svg"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sets_save_as_lists_in_an_order_independent_of_hashing(tmp_path):
    """A result holding a set (ACDC's kept edges) saves as JSON, the same for equal sets."""
    import json
    from dataclasses import dataclass

    from mechscope.results import Result

    @dataclass(frozen=True)
    class Kept(Result):
        edges: frozenset
        names: set

    kept = Kept(edges=frozenset({(2, "b"), (1, "a"), (1, "c")}), names={"y", "x"})
    saved = json.loads(kept.save(tmp_path / "kept.json").read_text())
    assert saved == {"type": "Kept", "edges": [[1, "a"], [1, "c"], [2, "b"]], "names": ["x", "y"]}
    shuffled = Kept(edges=frozenset([(1, "c"), (2, "b"), (1, "a")]), names={"x", "y"})
    assert shuffled.to_dict() == kept.to_dict()
