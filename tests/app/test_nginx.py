"""The production setup of docs/deploy/nginx.conf, tested: Debian's nginx with that very file
(its ports, paths and certificate swapped for this test's) in front of a served bot with all
three webhook channels, over TLS. Webhooks and /healthz go through it; what is not the bot's
stays with nginx.

nginx is a Debian package (.ci/run installs it): without it this test is skipped -- except
under CI=true, where a missing nginx is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.connections import ConnectionGuard
from app.httplimits import HttpLimits
from app.server import make_app, serving
from bench.common import free_port
from bot.engine import Engine
from bot.identity import UserRefs
from bot.pictures import Pictures
from handlers.channel import Channel
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.pictures import Gallery
from handlers.telegram import TelegramChannel
from handlers.web import COOKIE, WebChannel
from handlers.zalo_bot import ZaloBotChannel
from handlers.zalo_oa import OASettings, ZaloOAChannel
from storage.database import Database
from storage.repository import Repository
from storage.tokens import TokenStore
from tests.conftest import ROOT, TEST_SECRET, Migrated
from tests.fakes.telegram_api import FakeBotAPI, make_text_update
from tests.fakes.zalo_api import FakeZaloBotAPI, FakeZaloOA, oa_text_event, oa_webhook_request
from tests.fakes.zalo_api import text_event as zalo_text_event

CONFIG = ROOT / "docs" / "deploy" / "nginx.conf"
SECRET = "nginx-test-webhook-secret"
DOMAIN = "bot.example.vn"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt install nginx)")
    return found


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def swap(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced -- which must be there: the test follows the file."""
    assert old in text, f"docs/deploy/nginx.conf no longer says {old!r}"
    return text.replace(old, new)


@dataclass
class Nginx:
    https: int
    http: int
    directory: Path


@contextlib.contextmanager
def running_nginx(tmp: Path, app_port: int) -> Iterator[Nginx]:
    binary = nginx_binary()
    https, http = free_port(), free_port()
    cert, key = self_signed(tmp)
    site = CONFIG.read_text()
    site = swap(site, "listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    site = swap(site, "listen [::]:443 ssl;", "")  # the test machine may have no IPv6
    site = swap(site, "listen 80;", f"listen 127.0.0.1:{http};")
    site = swap(site, "listen [::]:80;", "")
    site = swap(site, f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem", str(cert))
    site = swap(site, f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem", str(key))
    site = swap(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{app_port};")
    site = swap(site, "/var/www/letsencrypt", str(tmp / "www"))
    (tmp / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    (tmp / "nginx.conf").write_text(
        f"""
daemon off;
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp / "access.log"};
{temp}
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};
    # The site file, as Debian's nginx.conf includes sites-enabled/*.
    include {tmp / "site.conf"};
}}
"""
    )
    # Run as whoever runs the tests (as root, nginx's workers would switch to "nobody",
    # who cannot enter pytest's private temporary directory).
    user = "root" if os.geteuid() == 0 else ""
    args = [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")]
    if user:
        args += ["-g", f"user {user};"]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield Nginx(https, http, tmp)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    nginx: Nginx
    telegram: FakeBotAPI
    zalo_bot: FakeZaloBotAPI
    oa: FakeZaloOA
    session: aiohttp.ClientSession

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        https: bool = True,
    ) -> tuple[int, bytes]:
        port = self.nginx.https if https else self.nginx.http
        scheme = "https" if https else "http"
        url = f"{scheme}://127.0.0.1:{port}{path}"
        async with self.session.request(
            method,
            url,
            data=body,
            headers={"Host": DOMAIN, **(headers or {})},
            ssl=False,  # the test's own self-signed certificate
            allow_redirects=False,
        ) as response:
            return response.status, await response.read()


@pytest.fixture
async def stack(
    engine: Engine, tmp_path: Path, pictures: Pictures, migrated: Migrated
) -> AsyncIterator[Stack]:
    nginx_binary()
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    await migrated.ready(url)
    db = Database(url)
    conversations = Conversations(engine, Repository(db), UserRefs(TEST_SECRET))
    inbound = Inbound(conversations)
    gallery = Gallery.of(pictures, f"https://{DOMAIN}")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(db.dispose)
        telegram_api = await stack.enter_async_context(FakeBotAPI())
        zalo_api = await stack.enter_async_context(FakeZaloBotAPI())
        oa = await stack.enter_async_context(FakeZaloOA())
        oa_settings = OASettings(
            app_id=oa.app_id,
            secret_key=oa.secret_key,
            oa_secret_key=oa.oa_secret_key,
            access_token="AT-1",
            refresh_token="RT-1",
            api_base_url=oa.api_base_url,
            oauth_base_url=oa.oauth_base_url,
        )
        channels: list[Channel] = [
            TelegramChannel(
                inbound,
                engine.content,
                telegram_api.token,
                base_url=telegram_api.base_url,
                webhook_secret=SECRET,
            ),
            ZaloBotChannel(
                inbound, zalo_api.token, base_url=zalo_api.base_url, webhook_secret=SECRET
            ),
            ZaloOAChannel(inbound, oa_settings, TokenStore(db, UserRefs(TEST_SECRET))),
            WebChannel(inbound, gallery=gallery),
        ]
        for channel in channels:
            await channel.start()
            stack.push_async_callback(channel.stop)
        limits = HttpLimits()
        guard = ConnectionGuard(limits)
        app = make_app(channels, limits=limits, guard=guard, routes=gallery.routes())
        site = await stack.enter_async_context(serving(app, guard, "127.0.0.1", 0))
        nginx = stack.enter_context(running_nginx(tmp_path, site.port))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await _until_up(session, nginx)
        yield Stack(nginx, telegram_api, zalo_api, oa, session)
        await inbound.drain()


async def _until_up(session: aiohttp.ClientSession, nginx: Nginx) -> None:
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientError):
            url = f"https://127.0.0.1:{nginx.https}/healthz"
            async with session.get(url, ssl=False) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError((nginx.directory / "error.log").read_text())


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def test_webhooks_and_health_go_through_nginx(stack: Stack) -> None:
    status, body = await stack.request("GET", "/healthz")
    assert status == 200
    assert json.loads(body)["channels"] == ["telegram", "zalo_bot", "zalo_oa", "web"]

    update = {"update_id": 1, **make_text_update(7001, "xin chào")}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert (await stack.request("POST", "/telegram/webhook", _json(update), headers))[0] == 200
    # The greeting, the promise and the menu: one message.
    await stack.telegram.wait_for(lambda: len(stack.telegram.sent(7001)) == 1)

    event = zalo_text_event("z7002", "xin chào")
    headers = {"X-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    assert (await stack.request("POST", "/zalo/bot/webhook", _json(event), headers))[0] == 200
    await stack.zalo_bot.wait_sent("z7002", 1)

    raw, headers = oa_webhook_request(
        oa_text_event("7003", "xin chào", app_id=stack.oa.app_id),
        app_id=stack.oa.app_id,
        oa_secret_key=stack.oa.oa_secret_key,
    )
    assert (await stack.request("POST", "/zalo/oa/webhook", raw, headers))[0] == 200
    await stack.oa.wait_sent("7003", 1)


async def test_the_web_chat_and_the_pictures_go_through_nginx(
    stack: Stack, pictures: Pictures
) -> None:
    async with stack.session.get(
        f"https://127.0.0.1:{stack.nginx.https}/chat", headers={"Host": DOMAIN}, ssl=False
    ) as page:
        assert page.status == 200
        cookie = page.cookies[COOKIE]
        assert cookie["secure"], "PUBLIC_URL is https: the id travels over TLS only"
        html = await page.text()
    token = re.search(r'name="csrf" value="([^"]+)"', html)
    assert token is not None
    form = f"csrf={token.group(1)}&nonce=through-nginx-0001&start=1".encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"{COOKIE}={cookie.value}",
        "Origin": f"https://{DOMAIN}",  # the page's own origin, as nginx passes Host on
    }
    status, body = await stack.request("POST", "/chat", form, headers)
    assert status == 200
    assert "KHÔNG BAO GIỜ" in body.decode()
    forged = {**headers, "Origin": "https://evil.example"}
    assert (await stack.request("POST", "/chat", form, forged))[0] == 403
    css = re.search(r'href="(/chat/static/[^"]+)"', html)
    assert css is not None
    assert (await stack.request("GET", css.group(1)))[0] == 200
    card = pictures.get("cccd_photo")
    assert card is not None
    status, png = await stack.request("GET", Gallery.path(card))
    assert (status, png) == (200, card.png), "where Zalo's servers fetch it"


async def test_the_bot_still_refuses_what_is_not_the_platforms(stack: Stack) -> None:
    update = {"update_id": 2, **make_text_update(7004, "xin chào")}
    forged = {"X-Telegram-Bot-Api-Secret-Token": "wrong", "Content-Type": "application/json"}
    assert (await stack.request("POST", "/telegram/webhook", _json(update), forged))[0] == 403
    nested = b"[" * 100_000
    real = {**forged, "X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert (await stack.request("POST", "/telegram/webhook", nested, real))[0] == 400


async def test_what_is_not_the_bots_stays_with_nginx(stack: Stack) -> None:
    assert (await stack.request("GET", "/"))[0] == 404
    assert (await stack.request("GET", "/admin"))[0] == 404
    big = b"x" * (2 << 20)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert (await stack.request("POST", "/telegram/webhook", big, headers))[0] == 413
    status, _ = await stack.request("GET", "/telegram/webhook", https=False)
    assert status == 301, "plain HTTP goes to HTTPS"
    log = (stack.nginx.directory / "access.log").read_text()
    assert "/admin" in log, "nginx answered these itself"


async def test_a_client_that_sends_nothing_is_dropped_by_nginx_on_either_port(
    stack: Stack,
) -> None:
    # Both ports at once: each waits out client_header_timeout (5 s), the same 5 s.
    await asyncio.gather(_silent_client(stack, https=True), _silent_client(stack, https=False))


async def _silent_client(stack: Stack, *, https: bool) -> None:
    """A client that opens a request and then sends nothing: nginx must drop it."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the test's own certificate
    port = stack.nginx.https if https else stack.nginx.http
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls if https else None)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: " + DOMAIN.encode())  # and then nothing
    await writer.drain()
    async with asyncio.timeout(10):  # client_header_timeout 5s
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
    writer.close()
