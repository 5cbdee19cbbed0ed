"""Tests for the fake Zalo Bot Platform and OA servers, driven over real HTTP with aiohttp."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.zalo_api import (
    CS_PATH,
    OAUTH_TOKEN_PATH,
    FakeZaloBotAPI,
    FakeZaloOA,
    image_event,
    oa_follow_event,
    oa_image_event,
    oa_signature,
    oa_sticker_event,
    oa_text_event,
    oa_webhook_request,
    sticker_event,
    text_event,
    unsupported_event,
)

USER = "6ede9afa66b88fe6d6a9"
OA_USER = "6142494823000000001"
HEX20 = re.compile(r"[0-9a-f]{20}")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def api() -> AsyncIterator[FakeZaloBotAPI]:
    async with FakeZaloBotAPI() as server:
        yield server


@pytest.fixture
async def oa() -> AsyncIterator[FakeZaloOA]:
    async with FakeZaloOA() as server:
        yield server


async def call(
    session: aiohttp.ClientSession,
    api: FakeZaloBotAPI,
    method: str,
    payload: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    url = f"{api.base_url}/bot{token if token is not None else api.token}/{method}"
    async with session.post(url, json=payload if payload is not None else {}) as resp:
        body: dict[str, Any] = await resp.json()
        return resp.status, body


# --------------------------------------------------------------------------- Bot Platform


async def test_get_me(api: FakeZaloBotAPI, session: aiohttp.ClientSession) -> None:
    assert api.base_url == f"http://127.0.0.1:{api.port}"
    status, body = await call(session, api, "getMe")
    assert status == 200
    assert body == {
        "ok": True,
        "result": {
            "id": "1459232241454765289",
            "account_name": "bot.test",
            "account_type": "BASIC",
            "can_join_groups": False,
            "display_name": "Bot Test",  # real bots answer with it, the docs' sample lacks it
        },
    }
    assert [(c.method, c.params, c.ok, c.auth) for c in api.calls] == [
        ("getMe", {}, True, api.token)
    ]


async def test_send_message_ok_and_recorded(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    before = time.time() * 1000
    status, body = await call(session, api, "sendMessage", {"chat_id": USER, "text": "Xin chào"})
    assert status == 200
    assert body["ok"] is True
    assert HEX20.fullmatch(body["result"]["message_id"])
    assert before - 1 <= body["result"]["date"] <= time.time() * 1000 + 1
    await call(session, api, "sendMessage", {"chat_id": "other", "text": "khác"})
    await call(session, api, "sendMessage", {"chat_id": USER, "text": "x" * 2000})

    assert api.sent_texts(USER) == ["Xin chào", "x" * 2000]
    assert api.sent(USER)[0] == {"chat_id": USER, "text": "Xin chào"}
    assert [p["text"] for p in api.sent()][:2] == ["Xin chào", "khác"]
    assert api.sent("nobody") == []
    assert [c.method for c in api.calls_of("sendMessage")] == ["sendMessage"] * 3


async def test_send_message_too_long_is_ok_false(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    status, body = await call(session, api, "sendMessage", {"chat_id": USER, "text": "x" * 2001})
    assert status == 200  # Zalo answers errors with HTTP 200 and ok: false
    assert body == {"ok": False, "error_code": 400, "description": "text too long"}
    status, body = await call(session, api, "sendMessage", {"chat_id": USER, "text": ""})
    assert (status, body["ok"], body["error_code"]) == (200, False, 400)
    status, body = await call(session, api, "sendMessage", {"text": "no chat"})
    assert (status, body["ok"], body["error_code"]) == (200, False, 400)
    assert api.sent() == []
    assert [(c.status, c.error, c.ok) for c in api.rejected] == [(200, 400, False)] * 3


async def test_wrong_token_401_and_unknown_method_404(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    status, body = await call(session, api, "getMe", token="999:WRONG")
    assert status == 401
    assert body == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    status, body = await call(
        session, api, "sendMessage", {"chat_id": USER, "text": "a"}, token="x"
    )
    assert status == 401
    assert api.sent() == []

    for method in ("sendRocket", "sendmessage"):  # method names are case-sensitive
        status, body = await call(session, api, method)
        assert status == 404
        assert body == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert [(c.method, c.status, c.auth) for c in api.calls] == [
        ("getMe", 401, "999:WRONG"),
        ("sendMessage", 401, "x"),
        ("sendRocket", 404, api.token),
        ("sendmessage", 404, api.token),
    ]


async def test_form_and_empty_bodies(api: FakeZaloBotAPI, session: aiohttp.ClientSession) -> None:
    url = f"{api.base_url}/bot{api.token}"
    async with session.post(f"{url}/sendMessage", data={"chat_id": USER, "text": "form"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True
    async with session.post(f"{url}/getMe") as resp:
        assert (await resp.json())["result"]["account_name"] == "bot.test"
    async with session.post(
        f"{url}/sendMessage", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["ok"] is False
    assert api.sent_texts(USER) == ["form"]


async def test_other_methods(api: FakeZaloBotAPI, session: aiohttp.ClientSession) -> None:
    status, body = await call(
        session, api, "sendChatAction", {"chat_id": USER, "action": "typing"}
    )
    assert (status, body) == (200, {"ok": True})
    _, body = await call(
        session, api, "sendPhoto", {"chat_id": USER, "photo": "https://x/a.jpg", "caption": "c"}
    )
    assert body["ok"] is True
    assert HEX20.fullmatch(body["result"]["message_id"])
    _, body = await call(session, api, "sendPhoto", {"chat_id": USER})
    assert body["ok"] is False
    assert api.calls_of("sendPhoto")[0].params["photo"] == "https://x/a.jpg"
    assert api.sent() == []  # sent() is sendMessage only

    # No webhook set: a real bot answers 404, not an empty url.
    status, body = await call(session, api, "getWebhookInfo")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    _, body = await call(
        session, api, "setWebhook", {"url": "https://h/zalo", "secret_token": "s"}
    )
    assert body["ok"] is False  # secret_token must be 8-256 characters
    secret = {"url": "https://h/zalo", "secret_token": "s" * 8}
    _, body = await call(session, api, "setWebhook", secret)
    assert body["ok"] is True
    assert body["result"]["url"] == "https://h/zalo"
    assert (api.webhook_url, api.webhook_secret) == ("https://h/zalo", "s" * 8)
    _, body = await call(session, api, "getWebhookInfo")
    assert body["result"]["url"] == "https://h/zalo"
    _, body = await call(session, api, "deleteWebhook")
    assert body["ok"] is True
    assert api.webhook_url == ""
    status, _ = await call(session, api, "getWebhookInfo")
    assert status == 404


async def test_get_updates_replays_pending_update(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    first = api.text_event(USER, "một", message_id="a" * 20)
    second = api.text_event(USER, "hai", message_id="b" * 20)
    assert api.pending_updates() == 2
    assert first["event_name"] == "message.text.received"

    texts = []
    for _ in range(5):
        status, body = await call(session, api, "getUpdates", {"timeout": "30"})
        assert status == 200
        assert body["ok"] is True
        texts.append(body["result"]["message"]["text"])
    assert texts == ["một", "hai", "một", "hai", "một"]  # round robin, nothing removed
    assert api.pending_updates() == 2
    assert api.delivered[:2] == [first, second]

    assert api.consume("a" * 20) == 1
    _, body = await call(session, api, "getUpdates", {"timeout": "30"})
    assert body["result"] == second
    assert api.consume() == 1
    assert api.pending_updates() == 0
    status, body = await call(session, api, "getUpdates", {"timeout": "0"})
    assert status == 408


async def test_get_updates_once_without_replay(session: aiohttp.ClientSession) -> None:
    async with FakeZaloBotAPI(replay=False) as api:
        api.add_update(text_event(USER, "một", flat=False))  # envelope is unwrapped
        api.image_event(USER, caption="ảnh")
        _, body = await call(session, api, "getUpdates", {"timeout": 1})
        assert body["result"]["message"]["text"] == "một"
        _, body = await call(session, api, "getUpdates", {"timeout": 1})
        assert body["result"]["event_name"] == "message.image.received"
        assert body["result"]["message"]["caption"] == "ảnh"
        assert api.pending_updates() == 0
        status, _ = await call(session, api, "getUpdates", {"timeout": 0})
        assert status == 408


async def test_get_updates_408_when_empty(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    status, body = await call(session, api, "getUpdates", {"timeout": "0.3"})
    elapsed = time.monotonic() - started
    assert status == 408
    assert body == {"ok": False, "error_code": 408, "description": "Request timeout"}
    assert 0.25 <= elapsed < 2
    assert [(c.method, c.status, c.error) for c in api.calls] == [("getUpdates", 408, 408)]
    _, body = await call(session, api, "getUpdates", {"timeout": "soon"})
    assert (body["ok"], body["error_code"]) == (False, 400)


async def test_long_poll_wakes_on_new_update(
    api: FakeZaloBotAPI, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(call(session, api, "getUpdates", {"timeout": "10"}))
    await api.wait_for(lambda: api.polling == 1)
    assert not poll.done()
    api.sticker_event(USER)
    status, body = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 2
    assert status == 200
    assert body["result"]["event_name"] == "message.sticker.received"
    assert api.polling == 0


async def test_stop_answers_pending_poll(session: aiohttp.ClientSession) -> None:
    api = FakeZaloBotAPI()
    await api.start()
    try:
        poll = asyncio.create_task(call(session, api, "getUpdates", {"timeout": "30"}))
        await api.wait_for(lambda: api.polling == 1)
    finally:
        await api.stop()
    status, _ = await asyncio.wait_for(poll, 3)
    assert status == 408


async def test_fail_next(api: FakeZaloBotAPI, session: aiohttp.ClientSession) -> None:
    api.fail_next("sendMessage", 429, "Quota exceeded", http_status=429, count=2)
    api.fail_next("getUpdates", 403, "internal server error")
    api.text_event(USER, "hi")
    msg = {"chat_id": USER, "text": "spam"}
    for _ in range(2):
        status, body = await call(session, api, "sendMessage", msg)
        assert status == 429
        assert body == {"ok": False, "error_code": 429, "description": "Quota exceeded"}
    status, body = await call(session, api, "sendMessage", msg)
    assert (status, body["ok"]) == (200, True)
    assert [c.status for c in api.calls_of("sendMessage")] == [429, 429, 200]
    assert api.sent_texts(USER) == ["spam"]

    status, body = await call(session, api, "getUpdates", {"timeout": 0})
    assert (status, body["error_code"]) == (200, 403)
    assert api.pending_updates() == 1
    _, body = await call(session, api, "getUpdates", {"timeout": 0})
    assert body["result"]["message"]["text"] == "hi"
    with pytest.raises(ValueError, match="count"):
        api.fail_next("getMe", 500, "x", count=0)


async def test_wait_sent_and_wait_for(api: FakeZaloBotAPI, session: aiohttp.ClientSession) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        for text in ("a", "b"):
            await call(session, api, "sendMessage", {"chat_id": USER, "text": text})

    task = asyncio.create_task(later())
    sent = await api.wait_sent(USER, 2, timeout=3)
    await task
    assert [p["text"] for p in sent] == ["a", "b"]
    with pytest.raises(AssertionError, match="expected >= 3 sendMessage"):
        await api.wait_sent(USER, 3, timeout=0.1)


def test_bot_event_builders() -> None:
    flat = text_event(USER, "Xin chào", message_id="2d758cb5e222177a4e35")
    assert flat["event_name"] == "message.text.received"
    message = flat["message"]
    assert message["from"] == {"id": USER, "display_name": f"User {USER}", "is_bot": False}
    assert message["chat"] == {"id": USER, "chat_type": "PRIVATE"}
    assert message["text"] == "Xin chào"
    assert message["message_id"] == "2d758cb5e222177a4e35"
    assert abs(message["date"] - time.time() * 1000) < 5000

    wrapped = text_event(USER, "x", flat=False)
    assert wrapped["ok"] is True
    assert set(wrapped) == {"ok", "result"}
    assert wrapped["result"]["event_name"] == "message.text.received"
    assert HEX20.fullmatch(wrapped["result"]["message"]["message_id"])

    photo = image_event(USER, photo_url="https://x/p.jpg")
    assert photo["event_name"] == "message.image.received"
    assert photo["message"]["photo_url"] == "https://x/p.jpg"
    sticker = sticker_event(USER, sticker="abc")
    assert (sticker["event_name"], sticker["message"]["sticker"]) == (
        "message.sticker.received",
        "abc",
    )
    hidden = unsupported_event(USER)
    assert hidden["event_name"] == "message.unsupported.received"
    assert set(hidden["message"]) == {"from", "chat", "message_id", "date"}


# --------------------------------------------------------------------------- Official Account


async def cs(
    session: aiohttp.ClientSession,
    oa: FakeZaloOA,
    message: dict[str, Any],
    *,
    user_id: str = OA_USER,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"access_token": token if token is not None else oa.access_token}
    body = {"recipient": {"user_id": user_id}, "message": message}
    async with session.post(f"{oa.api_base_url}{CS_PATH}", json=body, headers=headers) as resp:
        assert resp.status == 200  # the OA answers errors with HTTP 200 too
        result: dict[str, Any] = await resp.json()
        return result


async def refresh(
    session: aiohttp.ClientSession,
    oa: FakeZaloOA,
    refresh_token: str,
    *,
    secret_key: str | None = None,
) -> dict[str, Any]:
    form = {"refresh_token": refresh_token, "app_id": oa.app_id, "grant_type": "refresh_token"}
    headers = {"secret_key": secret_key if secret_key is not None else oa.secret_key}
    url = f"{oa.oauth_base_url}{OAUTH_TOKEN_PATH}"
    async with session.post(url, data=form, headers=headers) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def test_cs_send_ok(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    assert oa.api_base_url == oa.oauth_base_url == f"http://127.0.0.1:{oa.port}"
    body = await cs(session, oa, {"text": "Xin chào"})
    assert body["error"] == 0
    assert body["message"] == "Success"
    data = body["data"]
    assert re.fullmatch(r"[0-9a-f]+", data["message_id"])
    assert data["user_id"] == OA_USER
    assert abs(data["sent_time"] - time.time() * 1000) < 5000
    assert isinstance(data["quota"], dict)

    assert oa.sent(OA_USER) == [
        {"recipient": {"user_id": OA_USER}, "message": {"text": "Xin chào"}}
    ]
    assert oa.sent_texts(OA_USER) == ["Xin chào"]
    assert oa.sent() == oa.sent(OA_USER)
    assert [(c.method, c.ok, c.auth) for c in oa.calls] == [(CS_PATH, True, "AT-1")]


async def test_cs_invalid_token(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    body = await cs(session, oa, {"text": "a"}, token="WRONG")
    assert body == {"error": -216, "message": "Access token is invalid"}
    async with session.post(
        f"{oa.api_base_url}{CS_PATH}",
        json={"recipient": {"user_id": OA_USER}, "message": {"text": "a"}},
    ) as resp:
        assert (await resp.json())["error"] == -216  # no access_token header at all
    assert oa.sent() == []
    assert [c.error for c in oa.rejected] == [-216, -216]


async def test_refresh_rotates_tokens_once(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    body = await refresh(session, oa, "RT-1")
    assert body == {"access_token": "AT-2", "refresh_token": "RT-2", "expires_in": "90000"}
    assert (oa.access_token, oa.refresh_token, oa.refresh_count) == ("AT-2", "RT-2", 1)

    again = await refresh(session, oa, "RT-1")  # refresh tokens are single use
    assert again["error"] == -14014
    assert again["error_name"] == "invalid_grant"
    assert again["error_reason"] == "Invalid refresh token"
    assert "error_description" in again
    unknown = await refresh(session, oa, "RT-404")
    assert unknown["error_name"] == "invalid_grant"
    assert oa.refresh_count == 1

    assert (await cs(session, oa, {"text": "a"}, token="AT-1"))["error"] == -220  # old pair
    assert (await cs(session, oa, {"text": "b"}, token="AT-2"))["error"] == 0

    body = await refresh(session, oa, "RT-2")
    assert (body["access_token"], body["refresh_token"]) == ("AT-3", "RT-3")
    assert oa.refresh_count == 2
    params = oa.calls_of(OAUTH_TOKEN_PATH)[0].params
    assert params == {"refresh_token": "RT-1", "app_id": oa.app_id, "grant_type": "refresh_token"}


async def test_refresh_needs_app_secret(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    body = await refresh(session, oa, "RT-1", secret_key="NOPE")
    assert body["error"] == -14001
    assert body["error_name"] == "invalid_secret_key"
    assert oa.refresh_token == "RT-1"  # nothing rotated
    assert oa.refresh_count == 0


async def test_concurrent_refreshes_one_wins(session: aiohttp.ClientSession) -> None:
    async with FakeZaloOA(refresh_latency=0.2) as oa:
        results = await asyncio.gather(*(refresh(session, oa, "RT-1") for _ in range(2)))
        winners = [r for r in results if "access_token" in r]
        losers = [r for r in results if r.get("error_name") == "invalid_grant"]
        assert len(winners) == len(losers) == 1
        assert winners[0]["refresh_token"] == "RT-2"
        assert oa.refresh_count == 1


async def test_expired_access_token(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    oa.expire_access_token()
    body = await cs(session, oa, {"text": "a"})
    assert body == {"error": -220, "message": "Access token has expired"}
    await refresh(session, oa, oa.refresh_token)
    assert (await cs(session, oa, {"text": "a"}))["error"] == 0
    assert oa.sent_texts(OA_USER) == ["a"]


async def test_cs_text_limit(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    body = await cs(session, oa, {"text": "x" * 2001})
    assert body == {"error": -210, "message": "text exceeds limit"}
    assert (await cs(session, oa, {"text": "x" * 2000}))["error"] == 0
    assert (await cs(session, oa, {}))["error"] == -201  # neither text nor attachment
    assert len(oa.sent()) == 1


async def test_cs_outside_window(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    oa.outside_window(OA_USER)
    body = await cs(session, oa, {"text": "còn đó không?"})
    assert body == {
        "error": -230,
        "message": "User has not interacted with the OA in the past 7 days",
    }
    assert (await cs(session, oa, {"text": "ok"}, user_id="someone-else"))["error"] == 0
    oa.inside_window(OA_USER)
    assert (await cs(session, oa, {"text": "ok"}))["error"] == 0
    assert oa.sent_texts(OA_USER) == ["ok"]


def buttons(n: int, kind: str = "oa.query.show") -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"title": f"Nút {i}", "type": kind, "payload": f"#N{i}"} for i in range(n)
    ]
    return {"type": "template", "payload": {"buttons": items}}


async def test_cs_buttons(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    five = buttons(5)
    five["payload"]["buttons"][0] = {
        "title": "Website",
        "type": "oa.open.url",
        "payload": {"url": "https://example.vn"},
    }
    assert (await cs(session, oa, {"text": "Chọn:", "attachment": five}))["error"] == 0
    body = await cs(session, oa, {"text": "Chọn:", "attachment": buttons(6)})
    assert body == {"error": -201, "message": "invalid buttons"}
    body = await cs(session, oa, {"text": "Chọn:", "attachment": buttons(1, "oa.rocket")})
    assert body == {"error": -201, "message": "invalid buttons"}
    with_type = buttons(2, "oa.query.hide")
    with_type["payload"]["template_type"] = "button"
    assert (await cs(session, oa, {"text": "Chọn:", "attachment": with_type}))["error"] == 0
    assert len(oa.sent(OA_USER)) == 2
    assert oa.sent(OA_USER)[0]["message"]["attachment"] == five


async def test_oa_fail_next_and_wait_sent(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    oa.fail_next(CS_PATH, -32, "rate limit exceeded")
    assert await cs(session, oa, {"text": "a"}) == {"error": -32, "message": "rate limit exceeded"}

    async def later() -> None:
        await asyncio.sleep(0.05)
        await cs(session, oa, {"text": "b"})

    task = asyncio.create_task(later())
    sent = await oa.wait_sent(OA_USER, 1, timeout=3)
    await task
    assert [s["message"]["text"] for s in sent] == ["b"]
    with pytest.raises(ValueError, match="method must be"):
        oa.fail_next("/v3.0/oa/other", -1, "x")


async def test_oa_unknown_path_404(oa: FakeZaloOA, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{oa.api_base_url}/v2.0/oa/message", json={}) as resp:
        assert resp.status == 404
    assert [(c.method, c.status) for c in oa.calls] == [("/v2.0/oa/message", 404)]


def independent_signature(raw: bytes, app_id: str, secret: str) -> str:
    timestamp = str(json.loads(raw)["timestamp"])
    text = app_id + raw.decode("utf-8") + timestamp + secret
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_oa_signature_matches_independent_computation() -> None:
    event = oa_text_event(OA_USER, "Chào A4B", app_id="1234567890", timestamp=1699003881354)
    raw = json.dumps(event, ensure_ascii=False).encode()
    signature = oa_signature(raw, "1234567890", "OASECRET")
    expected = independent_signature(raw, "1234567890", "OASECRET")
    assert signature == f"mac={expected}"
    assert re.fullmatch(r"mac=[0-9a-f]{64}", signature)
    # Not an HMAC, and sensitive to every input.
    assert expected != hmac.new(b"OASECRET", raw, hashlib.sha256).hexdigest()
    assert oa_signature(raw, "1234567890", "OTHER") != signature
    assert oa_signature(raw + b" ", "1234567890", "OASECRET") != signature

    body, headers = oa_webhook_request(event, app_id="1234567890", oa_secret_key="OASECRET")
    assert body == raw
    assert headers["X-ZEvent-Signature"] == signature
    assert headers["Content-Type"] == "application/json"
    oa = FakeZaloOA()
    assert oa.signed(event) == (body, headers)


def test_oa_event_builders() -> None:
    text = oa_text_event(OA_USER, "Chào", app_id="APP", msg_id="cb31dff1c39642cc1b83")
    assert text["event_name"] == "user_send_text"
    assert text["app_id"] == "APP"
    assert text["sender"] == {"id": OA_USER}
    assert text["recipient"] == {"id": "OA1"}
    assert text["message"] == {"msg_id": "cb31dff1c39642cc1b83", "text": "Chào"}
    assert isinstance(text["user_id_by_app"], str)
    assert text["user_id_by_app"] != OA_USER
    assert isinstance(text["timestamp"], str)
    assert abs(int(text["timestamp"]) - time.time() * 1000) < 5000

    image = oa_image_event(OA_USER, app_id="APP", url="https://x/i.jpg", oa_id="OA9")
    assert image["event_name"] == "user_send_image"
    assert image["recipient"] == {"id": "OA9"}
    (attachment,) = image["message"]["attachments"]
    assert attachment["type"] == "image"
    assert attachment["payload"]["url"] == "https://x/i.jpg"
    assert "thumbnail" in attachment["payload"]
    assert HEX20.fullmatch(image["message"]["msg_id"])

    sticker = oa_sticker_event(OA_USER, app_id="APP")
    assert sticker["event_name"] == "user_send_sticker"
    assert sticker["message"]["attachments"][0]["type"] == "sticker"

    follow = oa_follow_event(OA_USER, app_id="APP")
    assert set(follow) == {"oa_id", "follower", "event_name", "source", "app_id", "timestamp"}
    assert follow["follower"] == {"id": OA_USER}
    assert (follow["event_name"], follow["source"], follow["oa_id"]) == (
        "follow",
        "oa_profile",
        "OA1",
    )
    assert isinstance(follow["timestamp"], str)
