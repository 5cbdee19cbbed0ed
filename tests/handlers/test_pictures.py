"""The pictures of the two hard steps on every channel, end to end: Telegram uploads the PNG
once and then sends its file id; the Zalo Bot and the Zalo OA send the public URL this server
serves the PNG at (or, without a public URL, what the picture shows in words); the terminal
prints the alt text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.server import make_app
from bot.engine import Engine
from bot.identity import UserRefs
from bot.model import OutMessage
from bot.pictures import Pictures
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.pictures import Gallery
from handlers.terminal import render
from handlers.zalo_bot import ZaloBotChannel
from handlers.zalo_oa import ZaloOAChannel
from storage.database import Database, migrate
from storage.repository import Repository
from storage.tokens import TokenStore
from tests.conftest import TEST_SECRET
from tests.fakes.telegram_api import FakeBotAPI
from tests.fakes.zalo_api import FakeZaloBotAPI, FakeZaloOA, oa_text_event, oa_webhook_request
from tests.fakes.zalo_api import text_event as zalo_text_event
from tests.handlers.harness import USER as TELEGRAM_USER
from tests.handlers.harness import Harness
from tests.handlers.test_zalo import settings

PUBLIC = "https://chuky.example.vn"
SECRET = "pictures-webhook-secret"
CHAT = "6ede9afa66b88fe6d6a9"


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'bot.db'}")
    await migrate(db)
    try:
        yield db
    finally:
        await db.dispose()


def _inbound(engine: Engine, db: Database) -> Inbound:
    return Inbound(Conversations(engine, Repository(db), UserRefs(TEST_SECRET)))


# --- the route ------------------------------------------------------------------------------


async def test_the_server_serves_each_picture_at_an_address_that_changes_with_it(
    pictures: Pictures,
) -> None:
    gallery = Gallery.of(pictures, PUBLIC)
    card = pictures.get("cccd_photo")
    assert card is not None
    assert gallery.url(card) == f"{PUBLIC}/pictures/cccd_photo-{card.digest}.png"
    async with TestClient(TestServer(make_app([], routes=gallery.routes()))) as client:
        response = await client.get(Gallery.path(card))
        assert response.status == 200
        assert response.content_type == "image/png"
        assert await response.read() == card.png
        assert "immutable" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
        again = await client.get(Gallery.path(card), headers={"If-None-Match": etag})
        assert again.status == 304
        for wrong in ("cccd_photo-0000000000000000.png", "selfie-" + card.digest + ".png",
                      "cccd_photo.png", "..%2Fconfig.toml"):  # fmt: skip
            assert (await client.get("/pictures/" + wrong)).status == 404, wrong


def test_without_a_public_url_there_is_no_link_but_words(pictures: Pictures) -> None:
    gallery = Gallery.of(pictures)
    face = pictures.get("face_check")
    assert face is not None
    assert gallery.url(face) is None
    assert gallery.in_words(face) == "🖼 " + face.alt
    assert face.alt.startswith("Hình mẫu quét khuôn mặt")


def test_the_terminal_prints_what_a_picture_shows(pictures: Pictures) -> None:
    shown = render([OutMessage("", picture="cccd_photo"), OutMessage("Bước 3/9")],
                   Gallery.of(pictures))  # fmt: skip
    card = pictures.get("cccd_photo")
    assert card is not None
    assert shown == f"🤖 🖼 {card.alt}\n\n🤖 Bước 3/9"


# --- Telegram -------------------------------------------------------------------------------


async def test_telegram_sends_the_photos_uploading_each_once(
    engine: Engine, sqlite: Database, pictures: Pictures
) -> None:
    async with FakeBotAPI() as api:
        harness = Harness(api, engine, sqlite, Gallery.of(pictures))
        await harness.start_bot()
        try:
            await harness.say("/start")
            for option in ("install", "ok", "i:vnpt", "android", "no", "done", "done"):
                await harness.press(option)
            front = api.calls_of("sendPhoto")
            assert len(front) == 1, "step 3 comes with its picture"
            upload = front[0].params["photo"]
            assert upload["file_name"] == "cccd_photo.png"
            assert upload["size"] == len(pictures.get("cccd_photo").png)  # type: ignore[union-attr]
            last = api.sent(TELEGRAM_USER)[-1]["text"]
            assert last.startswith("Bước 3/9"), "the picture, then the text"
            await harness.press("stuck")
            await harness.press("stuck_back")
            assert len(api.calls_of("sendPhoto")) == 1, "back from 'stuck': it is just above"
            await harness.press("done")
            again = api.calls_of("sendPhoto")[1].params["photo"]
            assert isinstance(again, str), "the same picture at step 4: Telegram's file id"
            assert again.startswith("AgACAgI")
            await harness.press("done")
            face = api.calls_of("sendPhoto")[2].params["photo"]
            assert face["file_name"] == "face_check.png"
            assert api.sent(TELEGRAM_USER)[-1]["text"].startswith("Bước 5/9")
            assert not api.rejected
        finally:
            await harness.stop_bot()


# --- Zalo Bot -------------------------------------------------------------------------------


async def _bot_walk(world: tuple[FakeZaloBotAPI, TestServer, ZaloBotChannel]) -> None:
    _, server, channel = world
    # The menu's "install", "I have everything", VNPT, Android, no reminders, 4 steps done.
    for typed in ("Xin chào", "2", "1", "VNPT SmartCA", "1", "2", "1", "1", "1", "1"):
        event = zalo_text_event(CHAT, typed)
        headers = {"X-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.make_url("/zalo/bot/webhook"), data=json.dumps(event), headers=headers
            ) as response,
        ):
            assert response.status == 200
        await channel.inbound.drain()


@pytest.fixture
async def zalo_bot(
    engine: Engine, sqlite: Database, pictures: Pictures, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[FakeZaloBotAPI, TestServer, ZaloBotChannel]]:
    gallery = Gallery.of(pictures, request.param)
    async with FakeZaloBotAPI() as api:
        channel = ZaloBotChannel(
            _inbound(engine, sqlite),
            api.token,
            base_url=api.base_url,
            webhook_secret=SECRET,
            gallery=gallery,
        )
        await channel.start()
        server = TestServer(make_app([channel], routes=gallery.routes()))
        await server.start_server()
        try:
            yield api, server, channel
        finally:
            await server.close()
            await channel.stop()


@pytest.mark.parametrize("zalo_bot", [PUBLIC], indirect=True)
async def test_zalo_bot_sends_the_photo_by_its_public_url(
    zalo_bot: tuple[FakeZaloBotAPI, TestServer, ZaloBotChannel], pictures: Pictures
) -> None:
    api, server, _ = zalo_bot
    await _bot_walk(zalo_bot)
    photos = [call.params for call in api.calls_of("sendPhoto") if call.ok]
    card, face = pictures.get("cccd_photo"), pictures.get("face_check")
    assert card is not None
    assert face is not None
    assert photos == [
        {"chat_id": CHAT, "photo": f"{PUBLIC}/pictures/cccd_photo-{card.digest}.png"},
        {"chat_id": CHAT, "photo": f"{PUBLIC}/pictures/cccd_photo-{card.digest}.png"},
        {"chat_id": CHAT, "photo": f"{PUBLIC}/pictures/face_check-{face.digest}.png"},
    ]
    assert api.sent_texts(CHAT)[-1].startswith("Bước 5/9")
    # What Zalo's servers fetch at that address (the path, on this server).
    path = photos[0]["photo"].removeprefix(PUBLIC)
    async with aiohttp.ClientSession() as session, session.get(server.make_url(path)) as got:
        assert got.status == 200
        assert await got.read() == card.png


@pytest.mark.parametrize("zalo_bot", [""], indirect=True)
async def test_zalo_bot_without_a_public_url_says_what_the_picture_shows(
    zalo_bot: tuple[FakeZaloBotAPI, TestServer, ZaloBotChannel], pictures: Pictures
) -> None:
    api, _, _ = zalo_bot
    await _bot_walk(zalo_bot)
    assert api.calls_of("sendPhoto") == []
    card = pictures.get("cccd_photo")
    assert card is not None
    texts = api.sent_texts(CHAT)
    said = [i for i, text in enumerate(texts) if text == "🖼 " + card.alt]
    assert len(said) == 2, "before step 3 and before step 4 (then the face's)"
    assert texts[said[0] + 1].startswith("Bước 3/9")


# --- Zalo OA --------------------------------------------------------------------------------

USER = "6142494823001"
#: The taps (a button's label comes back as text) from the menu to step 5.
OA_TAPS = (
    "📱 Hướng dẫn cài từng bước", "✅ Tôi có đủ, bắt đầu", "VNPT SmartCA",
    "Android (Samsung, Oppo, Xiaomi…)", "Không cần", "✅ Xong", "✅ Xong", "✅ Xong", "✅ Xong",
)  # fmt: skip


@pytest.mark.parametrize("public", [PUBLIC, ""])
async def test_zalo_oa_sends_the_picture_as_a_media_template(
    engine: Engine, sqlite: Database, pictures: Pictures, public: str
) -> None:
    gallery = Gallery.of(pictures, public)
    async with FakeZaloOA() as oa:
        refs = UserRefs(TEST_SECRET)
        channel = ZaloOAChannel(
            _inbound(engine, sqlite), settings(oa), TokenStore(sqlite, refs), gallery=gallery
        )
        await channel.start()
        server = TestServer(make_app([channel], routes=gallery.routes()))
        await server.start_server()
        try:
            for tap in ("xin chào", *OA_TAPS):
                event = oa_text_event(USER, tap, app_id=oa.app_id)
                body, headers = oa_webhook_request(
                    event, app_id=oa.app_id, oa_secret_key=oa.oa_secret_key
                )
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        server.make_url("/zalo/oa/webhook"), data=body, headers=headers
                    ) as response,
                ):
                    assert response.status == 200
                await channel.inbound.drain()
        finally:
            await server.close()
            await channel.stop()
        sent = [body["message"] for body in oa.sent(USER)]
        assert not oa.rejected
    card, face = pictures.get("cccd_photo"), pictures.get("face_check")
    assert card is not None
    assert face is not None
    media = [m for m in sent if _media(m)]
    words = [m["text"] for m in sent if m.get("text", "").startswith("🖼")]
    if public:
        assert [_media(m) for m in media] == [
            f"{PUBLIC}/pictures/cccd_photo-{card.digest}.png",
            f"{PUBLIC}/pictures/cccd_photo-{card.digest}.png",
            f"{PUBLIC}/pictures/face_check-{face.digest}.png",
        ]
        assert words == []
    else:
        assert media == []
        assert words == ["🖼 " + card.alt, "🖼 " + card.alt, "🖼 " + face.alt]
    assert sent[-1]["text"].startswith("Bước 5/9")


def _media(message: dict[str, Any]) -> str | None:
    payload = message.get("attachment", {}).get("payload", {})
    if payload.get("template_type") != "media":
        return None
    return str(payload["elements"][0]["url"])
