"""Zalo end to end over real HTTP: the webhook server in front, local stand-ins of the Zalo
Bot API and the Zalo OA API behind. Conversations run to a recorded completion on each
platform; secrets, signatures, repeats, long texts and token refreshes are checked.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from app.server import make_app
from bot.config import ConfigError
from bot.content import Content
from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import Media, OutMessage
from handlers import zalo_bot, zalo_oa
from handlers.channel import Services
from handlers.conversation import Conversations
from handlers.delivery import InDoubt, NotSent, Rejected, RetryLater, Unreachable
from handlers.inbound import Inbound
from handlers.zalo_bot import ZaloBotChannel
from handlers.zalo_oa import OASettings, ZaloOAChannel
from storage.database import Database, migrate
from storage.repository import Repository
from storage.tokens import Tokens, TokenStore, TokenStoreError
from tests.conftest import TEST_SECRET, rows
from tests.fakes.zalo_api import (
    OAUTH_TOKEN_PATH,
    FakeZaloBotAPI,
    FakeZaloOA,
    image_event,
    oa_follow_event,
    oa_image_event,
    oa_text_event,
    oa_webhook_request,
    text_event,
)

SECRET = "zalo-bot-webhook-secret"
CHAT = "6ede9afa66b88fe6d6a9"

# The citizen's answers, typed as numbers, from the menu to a recorded completion:
# "I installed already" -> agree -> commune -> village -> lives here -> provider.
REPORT = ["3", "1", "1", "1", "1"]  # done, consent, village, living here, provider


def grew(sent: Callable[[str], list[Any]], who: str, before: int) -> bool:
    return len(sent(who)) > before


async def post(server: TestServer, path: str, data: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.make_url(path), data=data, headers=headers) as response,
    ):
        return response.status


# --- Zalo Bot Platform --------------------------------------------------------------------


class BotWorld:
    def __init__(self, api: FakeZaloBotAPI, server: TestServer, channel: ZaloBotChannel):
        self.api = api
        self.server = server
        self.channel = channel

    async def say(self, text: str, *, secret: str = SECRET, **kw: Any) -> int:
        event = text_event(CHAT, text, **kw)
        headers = {"X-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
        return await post(self.server, "/zalo/bot/webhook", json.dumps(event).encode(), headers)


@pytest.fixture
async def bot_world(engine: Engine, db: Database) -> AsyncIterator[BotWorld]:
    async with FakeZaloBotAPI() as api:
        world = await _bot_world(engine, db, api)
        try:
            yield world
        finally:
            await world.server.close()
            await world.channel.stop()


async def _bot_world(engine: Engine, db: Database, api: FakeZaloBotAPI) -> BotWorld:
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
    channel = ZaloBotChannel(
        Inbound(conversations), api.token, base_url=api.base_url, webhook_secret=SECRET
    )
    await channel.start()
    server = TestServer(make_app([channel]))
    await server.start_server()
    return BotWorld(api, server, channel)


async def test_bot_conversation_to_a_recorded_completion(
    bot_world: BotWorld, db: Database
) -> None:
    assert await bot_world.say("Xin chào") == 200
    (greeting,) = await bot_world.api.wait_sent(CHAT, 1)  # one notification, not three
    assert "KHÔNG BAO GIỜ" in greeting["text"]
    assert "1. 💡 Chữ ký số có lợi gì?" in greeting["text"], "options as numbered lines"
    for answer in REPORT:
        before = len(bot_world.api.sent(CHAT))
        assert await bot_world.say(answer) == 200
        await bot_world.api.wait_for(functools.partial(grew, bot_world.api.sent, CHAT, before))
    await bot_world.channel.inbound.drain()
    assert "Đã ghi nhận" in "".join(bot_world.api.sent_texts(CHAT)[-2:])
    completions = await rows(db, "SELECT channel, commune, village, provider FROM completions")
    assert [tuple(r) for r in completions] == [("zalo_bot", "16279", "dong-hoa", "vnpt")]


async def test_bot_wrong_secret_is_refused(bot_world: BotWorld, db: Database) -> None:
    assert await bot_world.say("Xin chào", secret="nope") == 403
    assert await bot_world.say("Xin chào", secret="") == 403
    await asyncio.sleep(0.05)
    assert bot_world.api.sent(CHAT) == []
    assert await rows(db, "SELECT * FROM sessions") == []


async def test_bot_same_event_twice_is_handled_once(bot_world: BotWorld) -> None:
    assert await bot_world.say("Xin chào", message_id="aaaabbbbccccddddeeee") == 200
    await bot_world.api.wait_sent(CHAT, 1)
    assert await bot_world.say("Xin chào", message_id="aaaabbbbccccddddeeee") == 200
    await bot_world.channel.inbound.drain()
    assert len(bot_world.api.sent(CHAT)) == 1


async def test_bot_both_envelope_shapes(bot_world: BotWorld) -> None:
    assert await bot_world.say("Xin chào", flat=False) == 200
    await bot_world.api.wait_sent(CHAT, 1)


async def test_bot_photo_gets_a_warning_it_cannot_delete(
    bot_world: BotWorld, content: Content
) -> None:
    headers = {"X-Bot-Api-Secret-Token": SECRET}
    await post(
        bot_world.server, "/zalo/bot/webhook", json.dumps(image_event(CHAT)).encode(), headers
    )
    sent = await bot_world.api.wait_sent(CHAT, 2)  # the greeting, then the warning
    assert sent[1]["text"].startswith(content.texts["media_photo_kept"])


async def test_bot_long_replies_are_split(content: Content, engine: Engine, db: Database) -> None:
    long_help = "\n\n".join(["Đây là một đoạn hướng dẫn dài cho người dân." * 8] * 12)
    assert len(long_help) > 4000
    wordy = Engine(
        replace(
            content,
            texts={**content.texts, "help": long_help},
            text_variants={"typed": {**content.text_variants["typed"], "help": long_help}},
        ),
        engine.config,
    )
    async with FakeZaloBotAPI() as api:
        world = await _bot_world(wordy, db, api)
        try:
            await world.say("Xin chào")
            await api.wait_sent(CHAT, 1)  # greeting, promise and menu: one message
            await world.say("/huongdan")
            await world.channel.inbound.drain()
            pieces = api.sent_texts(CHAT)[1:]
            assert len(pieces) >= 3
            assert all(len(t) <= 2000 for t in pieces)
            # The help, cut at paragraph breaks, then what to do on the menu (with the last).
            said = " ".join(" ".join(pieces).split())
            assert said.startswith(" ".join(long_help.split()))
            assert said.endswith("4. ❓ Hỏi đáp, cảnh giác lừa đảo")
            assert all(p.endswith("dân.") for p in pieces[:-1]), "never cut mid-paragraph"
            assert not api.rejected, "Zalo accepted every piece"
        finally:
            await world.server.close()
            await world.channel.stop()


async def test_bot_polling_handles_each_replayed_update_once(
    engine: Engine, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zalo_bot, "POLL_PAUSE", 0.01)
    monkeypatch.setattr(zalo_bot, "POLL_TIMEOUT", 1)
    async with FakeZaloBotAPI(replay=True) as api:
        api.text_event(CHAT, "Xin chào")
        api.text_event(CHAT, "1")
        conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
        channel = ZaloBotChannel(
            Inbound(conversations), api.token, base_url=api.base_url, polling=True
        )
        await channel.start()
        try:
            await api.wait_for(lambda: len(api.calls_of("getUpdates")) >= 8)
            await channel.inbound.drain()
        finally:
            await channel.stop()
        assert len(api.sent(CHAT)) == 2, "greeting + one screen, though replayed"


# --- Zalo Official Account ----------------------------------------------------------------

USER = "6142494823001"


class OAWorld:
    def __init__(self, oa: FakeZaloOA, server: TestServer, channel: ZaloOAChannel, db: Database):
        self.oa = oa
        self.server = server
        self.channel = channel
        self.db = db

    async def deliver(self, event: dict[str, Any], *, tamper: bool = False) -> int:
        body, headers = oa_webhook_request(
            event, app_id=self.oa.app_id, oa_secret_key=self.oa.oa_secret_key
        )
        if tamper:
            body = body.replace(b"user_send_text", b"user_send_TEXT")
        return await post(self.server, "/zalo/oa/webhook", body, headers)

    async def say(self, text: str, **kw: Any) -> int:
        return await self.deliver(oa_text_event(USER, text, app_id=self.oa.app_id, **kw))


def settings(oa: FakeZaloOA) -> OASettings:
    return OASettings(
        app_id=oa.app_id,
        secret_key=oa.secret_key,
        oa_secret_key=oa.oa_secret_key,
        access_token="AT-1",
        refresh_token="RT-1",
        api_base_url=oa.api_base_url,
        oauth_base_url=oa.oauth_base_url,
    )


async def oa_channel(engine: Engine, db: Database, oa: FakeZaloOA) -> ZaloOAChannel:
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
    channel = ZaloOAChannel(
        Inbound(conversations), settings(oa), TokenStore(db, UserRefs(TEST_SECRET))
    )
    await channel.start()
    return channel


@pytest.fixture
async def oa_world(engine: Engine, db: Database) -> AsyncIterator[OAWorld]:
    async with FakeZaloOA() as oa:
        channel = await oa_channel(engine, db, oa)
        server = TestServer(make_app([channel]))
        await server.start_server()
        try:
            yield OAWorld(oa, server, channel, db)
        finally:
            await server.close()
            await channel.stop()


async def test_oa_conversation_to_a_recorded_completion(oa_world: OAWorld) -> None:
    oa = oa_world.oa
    assert await oa_world.deliver(oa_follow_event(USER, app_id=oa.app_id)) == 200
    (greeting,) = await oa.wait_sent(USER, 1)
    buttons = greeting["message"]["attachment"]["payload"]["buttons"]
    assert [b["type"] for b in buttons] == ["oa.query.show"] * 4
    assert buttons[2]["payload"] == buttons[2]["title"] == "🎉 Tôi đã cài xong"
    # A tap on a query button comes back as its payload: the option's label.
    for tap in ("🎉 Tôi đã cài xong", "✅ Đồng ý", "Xã Nông Cống", "Thôn Tây Sơn (mẫu)",
                "Có, đang sống ở đây", "MISA eSign"):  # fmt: skip
        before = len(oa.sent(USER))
        assert await oa_world.say(tap) == 200
        await oa.wait_for(functools.partial(grew, oa.sent, USER, before))
    await oa_world.channel.inbound.drain()
    completions = await rows(oa_world.db, "SELECT channel, village, provider FROM completions")
    assert [tuple(r) for r in completions] == [("zalo_oa", "tay-son", "misa")]


async def test_oa_wrong_signature_is_refused(oa_world: OAWorld) -> None:
    assert await oa_world.deliver(oa_text_event(USER, "xin chao", app_id="x"), tamper=True) == 403
    await asyncio.sleep(0.05)
    assert oa_world.oa.sent(USER) == []
    assert await rows(oa_world.db, "SELECT * FROM sessions") == []


async def test_oa_same_event_twice_is_handled_once(oa_world: OAWorld) -> None:
    assert await oa_world.say("xin chao", msg_id="cb31dff1c39642cc1b83") == 200
    await oa_world.oa.wait_sent(USER, 1)
    assert await oa_world.say("xin chao", msg_id="cb31dff1c39642cc1b83") == 200
    await oa_world.channel.inbound.drain()
    assert len(oa_world.oa.sent(USER)) == 1


async def test_oa_long_text_is_split(oa_world: OAWorld) -> None:
    text = "Câu trả lời rất dài. " * 200
    await oa_world.channel.deliver(USER, (OutMessage(text),))
    pieces = [m["message"]["text"] for m in oa_world.oa.sent(USER)]
    assert len(pieces) == 3
    assert all(len(p) <= 2000 for p in pieces)


async def test_oa_expired_token_is_refreshed_and_the_send_retried(oa_world: OAWorld) -> None:
    oa_world.oa.expire_access_token()
    await oa_world.channel.deliver(USER, (OutMessage("Chào bạn"),))
    assert oa_world.oa.sent_texts(USER) == ["Chào bạn"]
    assert oa_world.oa.refresh_count == 1
    stored = await TokenStore(oa_world.db, UserRefs(TEST_SECRET)).load("zalo_oa")
    assert stored is not None
    assert stored.refresh_token == oa_world.oa.refresh_token, "the new pair was saved"
    raw = repr(await rows(oa_world.db, "SELECT access_token, refresh_token FROM channel_tokens"))
    assert oa_world.oa.refresh_token not in raw, "kept sealed"
    assert stored.access_token not in raw
    with pytest.raises(TokenStoreError):
        await TokenStore(oa_world.db, UserRefs(b"another-secret-0123456789ab")).load("zalo_oa")


async def test_oa_refresh_under_two_senders_happens_once_and_survives_a_restart(
    engine: Engine, db: Database
) -> None:
    async with FakeZaloOA(refresh_latency=0.2) as oa:
        channel = await oa_channel(engine, db, oa)
        try:
            oa.expire_access_token()
            await asyncio.gather(
                channel.deliver("u1", (OutMessage("Một"),)),
                channel.deliver("u2", (OutMessage("Hai"),)),
            )
            assert oa.refresh_count == 1
            assert (oa.sent_texts("u1"), oa.sent_texts("u2")) == (["Một"], ["Hai"])
        finally:
            await channel.stop()
        # A restart: the environment still holds the first, spent, pair.
        again = await oa_channel(engine, db, oa)
        try:
            await again.deliver("u1", (OutMessage("Ba"),))
            assert oa.sent_texts("u1") == ["Một", "Ba"]
            assert oa.refresh_count == 1, "the stored pair was used, not the spent one"
        finally:
            await again.stop()


async def test_oa_outside_the_window_is_not_retried(oa_world: OAWorld) -> None:
    oa_world.oa.outside_window(USER)
    with pytest.raises(Unreachable):
        await oa_world.channel.deliver(USER, (OutMessage("Chào bạn"),))
    assert len(oa_world.oa.calls_of("/v3.0/oa/message/cs")) == 1


def test_a_photo_comes_with_zalos_address_of_it() -> None:
    """Both Zalo platforms give a picture's address (a volunteer's may be passed on)."""
    url = "https://photo-stal.zadn.vn/test/man-hinh.jpg"
    incoming = zalo_bot.translate(image_event(CHAT, photo_url=url, caption="nut xanh"))
    assert incoming is not None
    assert incoming.event == Media("photo", url, "nut xanh")
    for key in ("photo", "url"):  # the field's name is unsettled (zalo.md 1.3)
        event = image_event(CHAT)
        event["message"][key] = event["message"].pop("photo_url").replace("photo.jpg", key)
        incoming = zalo_bot.translate(event)
        assert incoming is not None
        assert isinstance(incoming.event, Media)
        assert incoming.event.ref.endswith(f"/{key}")
    incoming = zalo_oa.translate(oa_image_event(USER, app_id="app", url=url))
    assert incoming is not None
    assert incoming.event == Media("photo", url, "")


async def test_a_passed_on_picture_is_sent_by_its_address(
    oa_world: OAWorld, bot_world: BotWorld
) -> None:
    url = "https://photo-stal.zadn.vn/test/man-hinh.jpg"
    await bot_world.channel.deliver(CHAT, (OutMessage("Tình nguyện viên:", photo=url),))
    (sent,) = [c.params for c in bot_world.api.calls_of("sendPhoto") if c.ok]
    assert (sent["photo"], sent["caption"]) == (url, "Tình nguyện viên:")
    await oa_world.channel.deliver(USER, (OutMessage("Tình nguyện viên:", photo=url),))
    said, shown = oa_world.oa.sent(USER)
    assert said["message"]["text"] == "Tình nguyện viên:"
    element = shown["message"]["attachment"]["payload"]["elements"][0]
    assert element == {"media_type": "image", "url": url}


async def test_oa_refresh_by_two_workers_at_once_spends_the_refresh_token_once(
    engine: Engine, database_url: str
) -> None:
    """Two worker processes (each its own connection and channel) find the token expired at
    the same moment: one refreshes, the other uses the pair it saved."""
    first, second = Database(database_url), Database(database_url)
    await migrate(first)
    async with FakeZaloOA(refresh_latency=0.2) as oa:
        a, b = await oa_channel(engine, first, oa), await oa_channel(engine, second, oa)
        try:
            oa.expire_access_token()
            await asyncio.gather(
                a.deliver("u1", (OutMessage("Một"),)), b.deliver("u2", (OutMessage("Hai"),))
            )
            assert oa.refresh_count == 1
            assert (oa.sent_texts("u1"), oa.sent_texts("u2")) == (["Một"], ["Hai"])
        finally:
            await a.stop()
            await b.stop()
            await first.dispose()
            await second.dispose()


# --- Compared with Zalo's docs and independent code ------------------------------------------

SAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "data" / "zalo_docs_samples.json").read_text("utf-8")
)


@pytest.fixture
async def lite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh SQLite database (the cases below are about the platforms, not the store)."""
    database = Database(f"sqlite:///{tmp_path / 'zalo.db'}")
    await migrate(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def lite_bot(engine: Engine, lite_db: Database) -> AsyncIterator[BotWorld]:
    async with FakeZaloBotAPI() as api:
        world = await _bot_world(engine, lite_db, api)
        try:
            yield world
        finally:
            await world.server.close()
            await world.channel.stop()


@pytest.fixture
async def lite_oa(engine: Engine, lite_db: Database) -> AsyncIterator[OAWorld]:
    async with FakeZaloOA() as oa:
        channel = await oa_channel(engine, lite_db, oa)
        server = TestServer(make_app([channel]))
        await server.start_server()
        try:
            yield OAWorld(oa, server, channel, lite_db)
        finally:
            await server.close()
            await channel.stop()


def now_ms(shift: timedelta = timedelta()) -> str:
    return str(int((datetime.now(UTC) + shift).timestamp() * 1000))


@pytest.mark.parametrize("sample", ["bot_webhook_text", "bot_webhook_text_flat"])
async def test_the_docs_bot_webhook_sample_is_answered(lite_bot: BotWorld, sample: str) -> None:
    body = json.dumps(SAMPLES[sample]["body"]).encode()
    headers = {"X-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert await post(lite_bot.server, "/zalo/bot/webhook", body, headers) == 200
    await lite_bot.api.wait_sent(
        "6ede9afa66b88fe6d6a9", 1
    )  # the greeting, the promise and the menu: one message


@pytest.mark.parametrize(("sample", "user"), [
    ("oa_user_send_text", "6142494823xxxxxxxx"),
    ("oa_follow", "6142494823000000777"),
])  # fmt: skip
async def test_the_docs_oa_webhook_samples_are_answered(
    lite_oa: OAWorld, sample: str, user: str
) -> None:
    event = {**SAMPLES[sample]["body"], "timestamp": now_ms()}  # a sample's time is long past
    assert await lite_oa.deliver(event) == 200
    await lite_oa.oa.wait_sent(user, 1)


def test_the_stand_in_answers_get_me_with_every_field_of_the_docs() -> None:
    from tests.fakes.zalo_api import BOT_INFO

    documented = SAMPLES["bot_get_me"]["body"]["result"]
    assert documented.keys() <= BOT_INFO.keys()
    assert BOT_INFO["display_name"].startswith("Bot")


async def test_the_stand_in_answers_404_for_webhook_info_without_a_webhook() -> None:
    async with FakeZaloBotAPI() as api, aiohttp.ClientSession() as session:
        url = f"{api.base_url}/bot{api.token}/getWebhookInfo"
        async with session.post(url, json={}) as response:
            assert response.status == 404
            assert (await response.json())["ok"] is False


#: How each code of the docs' table must end a send (handlers/zalo_bot.py, ``outcome``).
EXPECTED: dict[int, type[Exception]] = {
    400: Rejected,
    401: NotSent,
    403: NotSent,  # "internal server error": transient, never "the user blocked us"
    404: Unreachable,
    408: InDoubt,
    429: RetryLater,
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
async def test_every_error_code_of_the_docs_table_is_mapped(lite_bot: BotWorld, code: int) -> None:
    table = SAMPLES["bot_errors"]["table"]
    assert sorted(int(c) for c in table) == sorted(EXPECTED), "the docs' table, every row"
    lite_bot.api.fail_next("sendMessage", code, table[str(code)], http_status=code)
    with pytest.raises(EXPECTED[code]) as raised:
        await lite_bot.channel.deliver(CHAT, (OutMessage("Chào bạn"),))
    if code == 429:
        # Quota exceeded: a retry a second later is futile.
        assert isinstance(raised.value, RetryLater)
        assert raised.value.seconds >= 60


async def test_an_internal_server_error_does_not_mark_the_user_stopped(
    lite_bot: BotWorld, lite_db: Database
) -> None:
    lite_bot.api.fail_next("sendMessage", 403, "Internal server error")
    assert await lite_bot.say("xin chào") == 200
    await lite_bot.channel.inbound.drain()
    kinds = [r[0] for r in await rows(lite_db, "SELECT kind FROM events")]
    assert "blocked" not in kinds
    [(state,)] = await rows(lite_db, "SELECT state FROM sessions")
    assert not json.loads(state).get("stopped")


async def test_quota_exceeded_is_not_retried_a_second_later(lite_bot: BotWorld) -> None:
    lite_bot.api.fail_next("sendMessage", 429, "Quota exceeded")
    assert await lite_bot.say("xin chào") == 200
    await lite_bot.channel.inbound.drain()
    assert len(lite_bot.api.calls_of("sendMessage")) == 1, "no futile retry"


async def test_an_unsigned_url_check_gets_200_and_nothing_is_processed(lite_oa: OAWorld) -> None:
    headers = {"Content-Type": "application/json"}
    assert await post(lite_oa.server, "/zalo/oa/webhook", b"{}", headers) == 200
    unsigned = json.dumps(oa_text_event(USER, "xin chào", app_id=lite_oa.oa.app_id)).encode()
    assert await post(lite_oa.server, "/zalo/oa/webhook", unsigned, headers) == 403
    await lite_oa.channel.inbound.drain()
    assert await rows(lite_oa.db, "SELECT * FROM sessions") == []
    assert lite_oa.oa.sent(USER) == []


@pytest.mark.parametrize(
    "when",
    [
        datetime(2020, 3, 1, tzinfo=UTC) - datetime.now(UTC),
        -timedelta(days=8),  # after the 7 days the deliveries table remembers ids for
        -timedelta(days=2),
        timedelta(hours=1),  # from the future
    ],
    ids=["2020", "8 days ago", "2 days ago", "in an hour"],
)
async def test_a_signed_event_outside_the_delivery_window_is_not_applied(
    lite_oa: OAWorld, when: timedelta
) -> None:
    event = oa_text_event(USER, "xin chào", app_id=lite_oa.oa.app_id, timestamp=int(now_ms(when)))
    assert await lite_oa.deliver(event) == 200, "answered, so that Zalo does not retry it"
    await lite_oa.channel.inbound.drain()
    assert await rows(lite_oa.db, "SELECT * FROM sessions") == []
    assert lite_oa.oa.sent(USER) == []


async def test_a_signed_event_inside_the_window_is_applied(lite_oa: OAWorld) -> None:
    late = oa_text_event(
        USER, "xin chào", app_id=lite_oa.oa.app_id, timestamp=int(now_ms(-timedelta(hours=2)))
    )
    assert await lite_oa.deliver(late) == 200  # Zalo's last retry comes about 2 hours after
    await lite_oa.oa.wait_sent(USER, 1)


def oa_env(oa: FakeZaloOA, **changes: str) -> dict[str, str]:
    env = {
        "ZALO_OA_APP_ID": oa.app_id,
        "ZALO_OA_SECRET_KEY": oa.oa_secret_key,
        "ZALO_OA_APP_SECRET": oa.secret_key,
        "ZALO_OA_ACCESS_TOKEN": "AT-1",
        "ZALO_OA_REFRESH_TOKEN": "RT-1",
        "ZALO_OA_API_BASE_URL": oa.api_base_url,
        "ZALO_OAUTH_BASE_URL": oa.oauth_base_url,
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v}


def services(engine: Engine, db: Database) -> Services:
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
    return Services(Inbound(conversations), engine.content, db, "webhook")


async def test_the_oa_will_not_start_without_the_app_secret(
    engine: Engine, lite_db: Database
) -> None:
    async with FakeZaloOA() as oa:
        with pytest.raises(ConfigError, match="ZALO_OA_APP_SECRET"):
            zalo_oa.build(oa_env(oa, ZALO_OA_APP_SECRET=""), services(engine, lite_db))


async def test_oauth_refresh_sends_the_app_secret_not_the_oa_secret(
    engine: Engine, lite_db: Database
) -> None:
    async with FakeZaloOA() as oa:
        channel = zalo_oa.build(oa_env(oa), services(engine, lite_db))
        assert channel is not None
        await channel.start()
        try:
            oa.expire_access_token()
            await channel.deliver(USER, (OutMessage("Chào bạn"),))
        finally:
            await channel.stop()
        [refresh] = oa.calls_of(OAUTH_TOKEN_PATH)
        assert refresh.auth == oa.secret_key != oa.oa_secret_key
        assert oa.sent_texts(USER) == ["Chào bạn"]


async def test_a_failed_refresh_keeps_sending_with_the_still_valid_token(
    engine: Engine, lite_db: Database
) -> None:
    async with FakeZaloOA() as oa:
        # The pair in hand expires in an hour: a refresh is due (two hours ahead) but fails.
        soon = datetime.now(UTC) + timedelta(hours=1)
        await TokenStore(lite_db, UserRefs(TEST_SECRET)).save(
            "zalo_oa", Tokens("AT-1", "RT-1", soon), datetime.now(UTC)
        )
        oa.fail_next(OAUTH_TOKEN_PATH, -14014, "invalid_grant")
        channel = await oa_channel(engine, lite_db, oa)
        try:
            await channel.deliver(USER, (OutMessage("Một"),))
            await channel.deliver(USER, (OutMessage("Hai"),))
        finally:
            await channel.stop()
        assert oa.sent_texts(USER) == ["Một", "Hai"]
        assert len(oa.calls_of(OAUTH_TOKEN_PATH)) == 1, "not tried again at every send"


async def test_a_failed_refresh_with_an_expired_token_fails_the_send(
    engine: Engine, lite_db: Database
) -> None:
    async with FakeZaloOA() as oa:
        past = datetime.now(UTC) - timedelta(minutes=1)
        await TokenStore(lite_db, UserRefs(TEST_SECRET)).save(
            "zalo_oa", Tokens("AT-1", "RT-1", past), datetime.now(UTC)
        )
        oa.fail_next(OAUTH_TOKEN_PATH, -14014, "invalid_grant")
        channel = await oa_channel(engine, lite_db, oa)
        try:
            with pytest.raises(Rejected):
                await channel.deliver(USER, (OutMessage("Một"),))
        finally:
            await channel.stop()
        assert oa.sent_texts(USER) == []
