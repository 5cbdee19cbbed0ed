"""Property-based tests of the engine: any text, any sequence of inputs -> a reply.

Whatever a citizen sends, in whatever order -- typed text of any kind, a /start with any
payload, taps on the buttons shown and on stale or forged ones, photos, a block, a timeout --
the engine answers without an exception, every answer to something the citizen did says
something, at most four options are offered, the state survives the store's JSON, and
nothing that looks like a phone or ID number comes back out or is kept. Examples are
bounded and, under CI, derandomized (tests/conftest.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import get_args

from hypothesis import given
from hypothesis import strategies as st

from bot.content import MAX_OPTIONS
from bot.engine import Engine
from bot.engine.guards import REFERRAL
from bot.model import (
    Blocked,
    Choice,
    Input,
    Media,
    MediaKind,
    Reply,
    Start,
    State,
    Text,
    Timeout,
)
from tests.conftest import T0

#: Words the flow reacts to, so that generated text often means something.
WORDS = ["/start", "/menu", "/huongdan", "/dung", "/xoadulieu", "/baomat", "menu", "tiếp tục",
         "1", "2", "3", "4", "có", "không", "dừng", "ma VK7M2QX", "chữ ký là gì", ""]  # fmt: skip

phones = st.from_regex(r"\A0[35789][0-9]{8}\Z")
ids = st.from_regex(r"\A0[0-9]{11}\Z")
texts = (
    st.text(max_size=80)
    | st.sampled_from(WORDS)
    | st.builds("{} {} {}".format, st.text(max_size=10), phones | ids, st.text(max_size=10))
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=590, max_size=620)
)  # fmt: skip
start_payloads = (
    st.none() | st.sampled_from(["VK7M2QX", "inv_x", "0912345678"]) | st.text(max_size=70)
)
other_inputs = st.one_of(
    st.builds(Text, texts),
    st.builds(Start, start_payloads),
    st.builds(Choice, st.text(max_size=12), st.text(max_size=12)),
    st.builds(Media, st.sampled_from(get_args(MediaKind))),
    st.just(Timeout()),
    st.just(Blocked()),
)  # fmt: skip


def check(engine: Engine, state: State, event: Input, reply: Reply) -> None:
    if not isinstance(event, Timeout | Blocked):
        assert reply.messages, f"no answer to {event!r}"
    for message in reply.messages:
        assert len(message.options) <= MAX_OPTIONS
    again = State.from_json(json.loads(json.dumps(reply.state.to_json())))
    assert again == reply.state
    assert reply.state.referral is None or REFERRAL.match(reply.state.referral)
    if isinstance(event, Text | Start):
        said = event.text if isinstance(event, Text) else event.payload or ""
        for number in phones_and_ids(said):
            assert all(number not in m.text for m in reply.messages), "echoed"
            assert number not in json.dumps(reply.state.to_json()), "kept"
            assert all(number not in str(e) for e in reply.events), "recorded"


def phones_and_ids(text: str) -> list[str]:
    words = text.replace("\n", " ").split(" ")
    return [w for w in words if w.isdigit() and w.isascii() and len(w) in (10, 12)]


@given(texts)
def test_any_text_gets_an_answer(engine: Engine, text: str) -> None:
    reply = engine.advance(State(), Text(text), T0)
    check(engine, State(), Text(text), reply)


@given(st.data())
def test_any_sequence_of_inputs_gets_answers(engine: Engine, data: st.DataObject) -> None:
    state = State()
    now = T0
    for _ in range(data.draw(st.integers(min_value=1, max_value=12), label="steps")):
        options = engine.render(state)[-1].options if state.screen else ()
        tap: bool = data.draw(st.booleans(), label="tap a button shown")
        if options and tap:
            option = data.draw(st.sampled_from(options), label="button")
            event: Input = Choice(option.id, state.here.key)
        else:
            event = data.draw(other_inputs, label="input")
        now += data.draw(st.sampled_from([timedelta(seconds=5), timedelta(days=3)]), label="gap")
        reply = engine.advance(state, event, now)
        check(engine, state, event, reply)
        state = reply.state
