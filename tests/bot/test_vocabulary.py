"""Each word of the vocabulary has exactly one implementation, and the content uses no other."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import Content, ContentError, load_content
from bot.engine import Engine
from bot.engine.actions import ACTIONS
from bot.engine.rendering import CONDITIONS
from bot.model import State
from bot.vocabulary import Action, OptionCondition, Placeholder, ScreenId
from tests.conftest import ROOT


def test_every_action_has_one_implementation() -> None:
    assert set(ACTIONS) == set(Action)


def test_every_option_condition_has_one_predicate() -> None:
    assert set(CONDITIONS) == set(OptionCondition)


def test_every_placeholder_is_filled(engine: Engine) -> None:
    state = State(screen="store", answers={"provider": "vnpt", "commune": "16279"})
    assert set(engine.renderer.values(state)) == {str(p) for p in Placeholder}


def test_the_content_has_every_screen_the_engine_goes_to(content: Content) -> None:
    assert {str(s) for s in ScreenId} <= set(content.screens)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ('action = "human"', 'action = "summon"'),
        ('when = "has_ret"', 'when = "sometimes"'),
    ],
)
def test_a_word_outside_the_vocabulary_is_refused_at_load(
    tmp_path: Path, edit: str, message: str
) -> None:
    folder = tmp_path / "vi"
    folder.mkdir()
    for source in (ROOT / "content" / "vi").iterdir():
        if source.is_file():
            (folder / source.name).write_bytes(source.read_bytes())
    flow = folder / "flow.toml"
    flow.write_text(flow.read_text(encoding="utf-8").replace(edit, message, 1), "utf-8")
    name = message.split('"')[1]
    with pytest.raises(ContentError, match=f"'{name}' is not one of"):
        load_content("vi", root=folder.parent)
