"""Links in outgoing messages and announcements: every way of writing a link to somewhere
else is found, and only the deployment's own sites (and its own Telegram bot and channels)
stay visible."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.config import Config, ConfigError, parse_config
from bot.content import Content
from bot.engine import Engine
from bot.links import _MAY_LINK, LinkPolicy, find_links, foreign_links, scrub
from bot.model import State, Text
from bot.textnorm import INVISIBLE
from tests.bot.test_config import demo
from tests.conftest import T0

#: (a link the audit or we wrote, a piece of it that must not reach a citizen).
FOREIGN = [
    ("https://vneid-capnhat.top/app", "vneid-capnhat"),
    ("http://203.0.113.7/x", "203.0.113.7"),
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7:8080/dang-nhap", "203.0.113.7"),
    ("http://3405803783/", "3405803783"),
    ("http://0xCB007107/", "0xCB007107"),
    ("http://0313.0.0161.07/", "0313.0.0161.07"),
    ("http://0xcb.0.0x71.7/", "0xcb.0.0x71.7"),
    ("http://[2001:db8::1]/", "2001:db8"),
    ("https://dichvucong.gov.vn@203.0.113.7/x", "203.0.113.7"),
    ("dichvucong.gov.vn@evil.com", "evil.com"),
    ("https://evil.com\\@dichvucong.gov.vn", "evil.com"),
    ('<a href="https://evil.com">dichvucong.gov.vn</a>', "evil.com"),
    ("<a href=//evil.com>dichvucong.gov.vn</a>", "evil.com"),
    ("t.me/EvilBot", "EvilBot"),
    ("https://t.me/EvilBot?start=x", "EvilBot"),
    ("https://t.me/s/EvilChannel", "EvilChannel"),
    ("https://t.me/joinchat/AbCdEf", "AbCdEf"),
    ("https://t.me/+AbCdEf", "AbCdEf"),
    ("telegram.me/EvilBot", "EvilBot"),
    ("evilchannel.t.me", "evilchannel"),
    ("@EvilBot", "EvilBot"),
    ("tg://resolve?domain=EvilBot", "EvilBot"),
    ("evil。com", "evil"),
    ("evil．com", "evil"),
    ("EVIL.ＣＯＭ", "EVIL"),
    ("evil\u200b.com", "evil"),
    ("ev\u200bil.com/x", "il.com"),
    ("evil.c\u00adom", "evil"),
    ("https://ｅｖｉｌ.com", "ｅｖｉｌ"),
    ("https://evil%2Ecom/", "evil%2Ecom"),
    ("bücher.de", "bücher"),
    ("dichvucong.gov.vn.evil.com", "evil.com"),
    ("dichvucong-gov.vn", "dichvucong-gov.vn"),
    ("xn--dichvucng-c4a.gov.vn/dang-nhap", "xn--dichvucng"),
    ("ftp://dichvucong.gov.vn/", "ftp://"),
    ("Xem evil.com.Vào đó", "evil.com"),
]

#: Written in a message, still visible: the deployment's own sites and Telegram bot.
OWN = [
    "dichvucong.gov.vn",
    "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html?a=1",
    "HTTPS://DICHVUCONG.GOV.VN",
    "https://smartca.vnpt.vn",
    "https://play.google.com/store/apps/details?id=com.vnpt.smartca",
    "https://t.me/TroLyChuKySoDemoBot?start=abc",
    "t.me/trolychukysodemobot",
    "@TroLyChuKySoDemoBot",
]

#: Not links at all: figures, times and steps as the content writes them.
PLAIN = [
    "1.000.000 đồng",
    "7:30–11:30",
    "Bước 4/9",
    "0000 000 000 (số mẫu)",
    "v.v.",
    "TP.HCM",
    "Xong.Bạn bấm nút",
    "mục [2.1] và [a:b]",
]


def shown(content: Content, config: Config, text: str) -> str:
    """What a citizen sees when the bot's own text says ``text``."""
    texts = {**content.texts, "welcome_back": f"Vào {text} nhé."}
    engine = Engine(replace(content, texts=texts), config)
    state = engine.advance(State(), Text("/start"), T0).state
    # The welcome comes first, then the menu (in the same message).
    return engine.advance(state, Text("/start"), T0).messages[0].text.partition("\n\n")[0]


@pytest.mark.parametrize(("link", "piece"), FOREIGN)
def test_a_foreign_link_never_reaches_a_citizen(
    content: Content, config: Config, link: str, piece: str
) -> None:
    seen = shown(content, config, link)
    assert content.texts["link_removed"] in seen
    assert piece not in seen


@pytest.mark.parametrize("text", OWN + PLAIN)
def test_own_links_and_plain_figures_stay(content: Content, config: Config, text: str) -> None:
    assert shown(content, config, text) == f"Vào {text} nhé."


def with_links(**links: Any) -> dict[str, Any]:
    raw = demo()
    raw["links"] = {**raw["links"], **links}
    return raw


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        ("com", "public suffix"),
        ("gov.vn", "public suffix"),
        ("github.io", "public suffix"),
        ("203.0.113.7", "IP address"),
        ("t.me", "[links] telegram"),
        ("https://dichvucong.gov.vn", "only the domain"),
        ("*.gov.vn", "only the domain"),
        ("", "only the domain"),
    ],
)
def test_a_public_suffix_or_address_is_refused_in_the_allow_list(
    allowed: str, message: str
) -> None:
    raw = with_links(allowed=[*demo()["links"]["allowed"], allowed])
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)


@pytest.mark.parametrize("name", ["bad name", "t.me/x", "ab", 5])
def test_a_telegram_channel_must_be_a_username(name: Any) -> None:
    with pytest.raises(ConfigError, match="telegram"):
        parse_config(with_links(telegram=[name]))


POLICY = LinkPolicy(("dichvucong.gov.vn", "smartca.vnpt.vn"), frozenset({"trolychukysodemobot"}))


@pytest.mark.parametrize(
    ("text", "kind", "host", "name"),
    [
        ("https://dichvucong.gov.vn@203.0.113.7/x", "ip", "", ""),
        ("http://3405803783/", "ip", "", ""),
        ("http://0x7f.1/", "ip", "", ""),
        ("http://999.1.1.1/", "ip", "", ""),  # no valid address, no domain either
        ("[2001:db8::7]:80/x", "ip", "", ""),
        ("https://evil.com\\@dichvucong.gov.vn", "web", "evil.com", ""),
        ("https://dichvucong.gov.vn#@evil.com", "web", "dichvucong.gov.vn", ""),
        ("https://user:pw@SmartCA.VNPT.vn:8443/a", "web", "smartca.vnpt.vn", ""),
        ("bücher.de", "web", "xn--bcher-kva.de", ""),
        ("evil&#46;com", "web", "evil.com", ""),
        ("hotro@vnpt.vn", "web", "vnpt.vn", ""),
        ("https://t.me/s/SomeChannel/12", "telegram", "t.me", "somechannel"),
        ("somechannel.t.me", "telegram", "somechannel.t.me", "somechannel"),
        ("t.me/+AbCdEf", "telegram", "t.me", ""),
        ("@SomeChannel", "telegram", "", "somechannel"),
        ("tg://resolve?domain=x", "scheme", "", ""),
        ("file:///etc/passwd", "scheme", "", ""),
    ],
)
def test_what_a_link_leads_to(text: str, kind: str, host: str, name: str) -> None:
    (link,) = find_links(text)
    assert (link.kind, link.host, link.telegram) == (kind, host, name)


def test_a_link_is_replaced_whole_and_nothing_else() -> None:
    text = "Vào ev\u200bil。com/a?b=1. Rồi dichvucong.gov.vn, xong."
    assert scrub(text, POLICY, "[x]") == "Vào [x]. Rồi dichvucong.gov.vn, xong."
    assert foreign_links(text, POLICY) == ["evil。com/a?b=1"]


def test_every_invisible_character_is_removed() -> None:
    format_controls = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert INVISIBLE.sub("", "".join(format_controls)) == ""
    for invisible in format_controls[:: max(1, len(format_controls) // 40)]:
        assert find_links(f"evil{invisible}.com")[0].host == "evil.com"


def test_every_character_that_folds_into_link_punctuation_is_looked_at() -> None:
    for code in range(0x110000):
        folded = unicodedata.normalize("NFKC", chr(code))
        if any(mark in folded for mark in ".@:/\\&\u3002"):
            assert _MAY_LINK.match(chr(code)), hex(code)


_WORDS = st.sampled_from(
    [
        "evil", "com", "vn", "gov", "t", "me", "bot", "0x7f", "127", "1", "www", "https",
        "http", "tg", ".", "。", "．", "@", ":", "/", "//", "\\", "%2e", "%40", "#", "?",
        "&#46;", "[", "]", "::1", "-", "_", " ", "\u200b", "\u00ad", "ｅ", "xn--", "bücher",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.lists(_WORDS, max_size=30).map("".join)))
def test_any_text_never_reaches_an_allowed_verdict_without_its_name(text: str) -> None:
    """Whatever the text, nothing in it is allowed unless it names an allowed domain or
    bot, and scrubbing leaves no link that is not allowed."""
    found = find_links(text)
    for link in found:
        assert text[link.start : link.end]
        assert not POLICY.allows(link), link
    assert foreign_links(scrub(text, POLICY, "[x]"), POLICY) == []


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FOREIGN), st.text(max_size=40), st.text(max_size=40))
def test_a_foreign_link_is_found_whatever_surrounds_it(
    probe: tuple[str, str], before: str, after: str
) -> None:
    link, piece = probe
    text = f"{before} {link} {after}"
    assume(piece not in before + after)
    assert piece not in scrub(text, POLICY, "[x]")
