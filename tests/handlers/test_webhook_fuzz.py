"""Property-based tests of the three webhook parsers: whatever arrives, a defined answer.

A webhook's body goes through ``webhook.parse`` (bytes -> a JSON value) and the adapter's
translation (a JSON value -> an Incoming to process, None to ignore, or Malformed). Those
three outcomes are the only answers a webhook gives once the sender is authenticated --
200 processed, 200 ignored, 400 -- so the property is: for any bytes and any JSON value,
nothing else comes out (an exception there was a 500). Besides arbitrary values, real
deliveries are mutated (one field replaced by any JSON value, or dropped), which reaches the
fields the adapters actually read. The depth scan is checked against the nesting it stands
for. Examples are bounded and, under CI, derandomized (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from handlers import telegram, zalo_bot, zalo_oa
from handlers.channel import Incoming
from handlers.webhook import MAX_DEPTH, Malformed, parse, too_deep
from tests.fakes.telegram_api import make_callback_update, make_text_update
from tests.fakes.zalo_api import (
    image_event,
    oa_follow_event,
    oa_image_event,
    oa_text_event,
    text_event,
    unsupported_event,
)

#: Keys the parsers read, so that generated objects often hold them.
KEYS = (
    "update_id", "message", "edited_message", "callback_query", "my_chat_member", "chat",
    "from", "id", "type", "text", "data", "date", "message_id", "new_chat_member", "status",
    "ok", "result", "event_name", "chat_type", "sender", "follower", "timestamp", "msg_id",
)  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63, -(2**63), 10**20, 2**53 + 1])  # past what dates and ids hold
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "/start", "/start 0912345678", "private", "group", "kicked", "PRIVATE"])
    | st.from_regex(r"\A[0-9]{1,20}\Z")  # timestamps, ids, dates as strings
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=15,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, samples: list[dict[str, Any]]) -> Any:
    """A real delivery with one part replaced by any JSON value, or dropped."""
    value = copy.deepcopy(draw(st.sampled_from(samples)))
    path = draw(st.sampled_from(list(_paths(value))))
    if not path:
        return draw(json_values)
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return value


def defined(translate: Callable[[Any], Incoming | None], value: Any) -> None:
    """The property: an Incoming, None, or Malformed -- nothing else."""
    try:
        outcome = translate(value)
    except Malformed:
        return
    assert outcome is None or isinstance(outcome, Incoming)
    if outcome is not None:
        assert isinstance(outcome.user, str)
        assert isinstance(outcome.chat, str)
        assert outcome.user
        assert outcome.chat


# --- bytes -------------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_any_bytes_parse_to_a_value_or_malformed(raw: bytes) -> None:
    with contextlib.suppress(Malformed):
        parse(raw)


@given(json_values)
def test_any_json_text_parses_back(value: Any) -> None:
    assert parse(json.dumps(value).encode()) == json.loads(json.dumps(value))


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(st.recursive(scalars | st.sampled_from(['"[{', '\\"]', "\\\\", "}]"]), lambda c: (
    st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3)
), max_leaves=60), st.integers(min_value=0, max_value=8))  # fmt: skip
def test_the_depth_scan_measures_the_nesting(value: Any, limit: int) -> None:
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert too_deep(raw, limit) == (_depth(value) > limit)


def test_the_depth_scan_ignores_brackets_in_strings() -> None:
    assert not too_deep(json.dumps({"t": "[" * 10_000}).encode())
    assert too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


# --- Telegram ----------------------------------------------------------------------------

BOT_USER = {"id": 1, "is_bot": True, "first_name": "B"}
TELEGRAM = [
    {"update_id": 1, **make_text_update(42, "xin chào")},
    {"update_id": 2, **make_text_update(42, "/start VK7M2QX")},
    {"update_id": 3, **make_text_update(42, "/stats", chat_type="group")},
    {"update_id": 4, **make_callback_update(42, "menu|install")},
    {"update_id": 5, "edited_message": make_text_update(42, "sửa")["message"]},
    {
        "update_id": 6,
        "my_chat_member": {
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "A"},
            "date": 0,
            "old_chat_member": {"status": "member", "user": BOT_USER},
            "new_chat_member": {"status": "kicked", "until_date": 0, "user": BOT_USER},
        },
    },
    {
        "update_id": 7,
        "message": {
            **{k: v for k, v in make_text_update(42, "x")["message"].items() if k != "text"},
            "photo": [{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}],
        },
    },
]  # fmt: skip


def telegram_translate(value: Any) -> Incoming | None:
    return telegram.translate(telegram.parse_update(value))


def test_the_telegram_samples_are_understood() -> None:
    outcomes = [telegram_translate(sample) for sample in TELEGRAM]
    assert [o is not None for o in outcomes] == [True, True, True, True, True, True, True]


@given(json_values)
def test_telegram_any_json_value(value: Any) -> None:
    defined(telegram_translate, value)


@given(mutated(TELEGRAM))
def test_telegram_any_mutated_update(value: Any) -> None:
    defined(telegram_translate, value)


# --- Zalo Bot Platform -------------------------------------------------------------------

ZALO_BOT = [
    text_event("6ede9afa66b88fe6d6a9", "xin chào"),
    text_event("6ede9afa66b88fe6d6a9", "xin chào", flat=False),
    image_event("6ede9afa66b88fe6d6a9"),
    unsupported_event("6ede9afa66b88fe6d6a9"),
]


def test_the_zalo_bot_samples_are_understood() -> None:
    assert all(zalo_bot.translate(sample) is not None for sample in ZALO_BOT)


@given(json_values)
def test_zalo_bot_any_json_value(value: Any) -> None:
    defined(zalo_bot.translate, value)


@given(mutated(ZALO_BOT))
def test_zalo_bot_any_mutated_update(value: Any) -> None:
    defined(zalo_bot.translate, value)


# --- Zalo Official Account ---------------------------------------------------------------

OA = [
    oa_text_event("6142494823001", "xin chào", app_id="1"),
    oa_image_event("6142494823001", app_id="1"),
    oa_follow_event("6142494823001", app_id="1"),
    {**oa_follow_event("6142494823001", app_id="1"), "event_name": "unfollow"},
]


def oa_translate(value: Any) -> Incoming | None:
    """What the OA webhook does with an authenticated body, past the signature."""
    body = value if isinstance(value, dict) else {}
    if isinstance(value, dict) and "event_name" in body:
        zalo_oa.event_time(body)
    return zalo_oa.translate(value)


def test_the_oa_samples_are_understood() -> None:
    assert all(oa_translate(sample) is not None for sample in OA)


@given(json_values)
def test_oa_any_json_value(value: Any) -> None:
    defined(oa_translate, value)


@given(mutated(OA))
def test_oa_any_mutated_event(value: Any) -> None:
    defined(oa_translate, value)


@given(st.binary(max_size=300), st.text(max_size=80))
def test_oa_signature_check_is_a_yes_or_no_for_any_bytes_and_header(
    raw: bytes, header: str
) -> None:
    assert zalo_oa.signature_ok(raw, header, "1", "key") in (True, False)
    assert zalo_oa.url_check(raw) in (True, False)
