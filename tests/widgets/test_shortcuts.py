"""Keyboard shortcuts: the front end's messages reach undo, redo and match stepping."""

from __future__ import annotations

from nncf_explore.widgets import Explorer
from nncf_explore.widgets._shortcuts import _ESM, ACTIONS
from tests.widgets.fakes import FakeSession, synthetic_graph

CONV = "SynthNet/ModuleList[stages]/Stage[0]/ModuleList[blocks]/Block[0]/Conv2d[conv1]/conv2d_0"


def _key(explorer: Explorer, action: str) -> None:
    explorer.shortcuts._message(explorer.shortcuts, {"action": action}, [])


def test_undo_redo_and_match_stepping_from_keys() -> None:
    ex = Explorer(FakeSession(synthetic_graph(60, blocks_per_stage=4), "TRIAL"))
    assert set(ex.shortcuts.handlers) == set(ACTIONS)
    ex.select(CONV)
    ex.node_panel.weight_row.bits.value = 4
    _key(ex, "undo")
    assert ex.history.cursor == 0
    _key(ex, "redo")
    assert ex.history.cursor == 1
    ex.search("re:conv1")
    first, second = ex.matches[:2]
    ex.select(None)
    _key(ex, "next")
    assert ex.selected == first
    _key(ex, "next")
    assert ex.selected == second
    _key(ex, "previous")
    assert ex.selected == first
    _key(ex, "previous")
    assert ex.selected == ex.matches[-1]  # wraps around
    _key(ex, "bogus")  # an unknown action does nothing
    assert ex.error.message.value == ""


def test_no_matches_says_what_to_do() -> None:
    ex = Explorer(FakeSession(synthetic_graph(60, blocks_per_stage=4)))
    _key(ex, "next")
    assert "type in the search box first" in ex.error.message.value


def test_the_front_end_suppresses_jupyterlab_shortcuts_only_inside_the_explorer() -> None:
    assert 'el.closest(".nxe-explorer")' in _ESM and "data-lm-suppress-shortcuts" in _ESM
