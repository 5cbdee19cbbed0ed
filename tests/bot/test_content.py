"""The Vietnamese content: complete, consistent, and within the style limits."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Config
from bot.content import Content, ContentError, OptionSpec, check, load_content
from bot.links import foreign_links
from tests.conftest import ROOT

#: The FAQ topic ids of shared/spec/faq_topics.toml: a contract, never renamed.
CONTRACT_IDS = [
    "what_is", "benefits", "legal_value", "cost", "validity", "requirements", "time_needed",
    "providers", "vneid_diff", "how_to_use", "safety", "why_id_photo", "why_face",
    "who_keeps_data", "bot_data", "delete_data", "data_law", "scam_call", "fake_app",
    "otp_share", "lost_phone", "forgot_pin", "revoke", "photo_fail", "face_fail",
    "otp_missing", "name_mismatch", "no_smartphone", "elderly_help", "away_from_home",
    "minors", "merger_address", "human_help", "business_use",
]  # fmt: skip


def test_every_faq_topic_of_the_contract_is_answered(content: Content) -> None:
    assert list(content.faq)[: len(CONTRACT_IDS)] == CONTRACT_IDS


def test_faq_answers_are_short(content: Content) -> None:
    for topic in content.faq.values():
        words = [w for w in topic.answer.split() if w != "•"]
        assert 10 <= len(words) <= 120, topic.id
        assert topic.examples, topic.id


def test_install_walkthrough_has_nine_app_steps(content: Content) -> None:
    assert [s.id for s in content.install_steps("app")] == [
        "store", "register", "cccd_front", "cccd_back", "face", "sign_request", "pin",
        "activation", "first_use",
    ]  # fmt: skip


def test_button_labels_fit_a_phone(content: Content) -> None:
    labels = [o.label for s in content.screens.values() for o in s.options]
    labels += list(content.labels.values())
    for label in labels:
        assert len(label) <= 40, label


def test_no_link_outside_the_allowed_sites(content: Content, config: Config) -> None:
    texts = [*content.texts.values(), *(t.answer for t in content.faq.values())]
    texts += [t for s in content.screens.values() for t in s.texts]
    texts += [x for s in content.install for x in (s.text, s.why, s.stuck)]
    for text in texts:
        assert foreign_links(text, config.links) == [], text


def test_the_bot_never_asks_for_secrets(content: Content) -> None:
    """No text asks the user to send a photo, code, number or name to the bot."""
    asks = re.compile(r"(gửi|nhập|gõ)\s+(cho mình|vào đây|cho trợ lý)", re.IGNORECASE)
    texts = [*content.texts.values(), *(t for s in content.screens.values() for t in s.texts)]
    texts += [t for variant in content.text_variants.values() for t in variant.values()]
    for text in texts:
        assert not asks.search(text), text


def test_broken_reference_is_reported(content: Content) -> None:
    menu = content.screens["menu"]
    broken = replace(menu, options=(OptionSpec(id="x", label="x", goto="nowhere"),))
    with pytest.raises(ContentError, match="nowhere"):
        check(replace(content, screens={**content.screens, "menu": broken}))


def test_unknown_placeholder_is_reported(content: Content) -> None:
    texts = {**content.texts, "help": "Xin chào {full_name}"}
    with pytest.raises(ContentError, match="full_name"):
        check(replace(content, texts=texts))


def test_missing_locale_is_an_error() -> None:
    with pytest.raises(ContentError, match="no content folder"):
        load_content("xx", root=ROOT / "content")


def test_unchanged_files_load_once_and_a_change_is_seen_whatever_the_clock(
    tmp_path: Path,
) -> None:
    shutil.copytree(ROOT / "content" / "vi", tmp_path / "vi")
    first = load_content("vi", root=tmp_path)
    assert load_content("vi", root=tmp_path) is first, "the same files: loaded once"
    texts = tmp_path / "vi" / "texts.toml"
    before = texts.stat()
    old = first.texts["help"]
    new = old[:-1] + ("?" if old[-1] != "?" else "!")  # as long, within the same tick
    texts.write_text(texts.read_text().replace(old, new, 1))
    os.utime(texts, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert texts.stat().st_size == before.st_size
    assert load_content("vi", root=tmp_path).texts["help"] == new
    texts.write_text(texts.read_text() + "\n[broken\n")
    for _ in range(2):  # a broken file is refused every time, never served from memory
        with pytest.raises(ContentError):
            load_content("vi", root=tmp_path)


def test_without_buttons_nobody_is_told_to_tap(content: Content) -> None:
    """Where options are typed, "bấm" (tap) and "nút" (button) are never the chat's own."""
    typed = content.texts_for(("typed",))
    told = re.compile(r"\b(bấm|nút)\b", re.IGNORECASE)
    for key, text in content.text_variants["typed"].items():
        assert not told.search(text), key
    for key in ("help", "not_understood", "reoffer_step", "stopped", "scam_offer", "pick_hint"):
        assert not told.search(typed[key]), key
    assert not told.search(content.screens["menu"].texts_for(("typed",))[0])


def test_on_the_web_nobody_is_told_to_stop_messages_or_type_start(content: Content) -> None:
    """A page never writes first and is opened again by its link: its own wording never
    promises or stops messages, never names the chat apps' ids, never says /start."""
    web = content.texts_for(("web",))
    for key in ("help", "stopped", "erased", "error"):
        assert "/start" not in web[key], key
        assert "thôi nhận tin nhắn" not in web[key], key
    privacy = content.screens["privacy"].texts_for(("web",))
    assert not any("Telegram" in t or "nhận nhắc" in t for t in privacy)
    assert content.screens["no_reminders"].texts_for(("web",))[0].startswith("Lưu ý")


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ({"hello@typed": "Xin chào"}, "there is no texts.hello"),
        ({"help@voice": "Xin chào"}, "unknown variant"),
        ({"delete_command@typed": "xoa"}, "fills a placeholder"),
    ],
)
def test_a_wrong_variant_is_refused(content: Content, texts: dict[str, str], message: str) -> None:
    variants = {**content.text_variants}
    for key, text in texts.items():
        base, _, variant = key.partition("@")
        variants[variant] = {**variants.get(variant, {}), base: text}
    with pytest.raises(ContentError, match=message):
        check(replace(content, text_variants=variants))


def test_a_screen_variant_says_as_many_messages(content: Content) -> None:
    menu = content.screens["menu"]
    broken = replace(menu, variants={"typed": ("một", "hai")})
    with pytest.raises(ContentError, match="text@typed has 2 messages"):
        check(replace(content, screens={**content.screens, "menu": broken}))


def test_body_text_uses_bullets_not_numbers(content: Content) -> None:
    """Options are numbered on Zalo ("gõ số 1"): numbered lines in a text above them would
    be read as options."""
    numbered = re.compile(r"^\s*(\d+[.)]|\d\ufe0f?\u20e3)\s", re.MULTILINE)
    texts = [*content.texts.values(), *(t for s in content.screens.values() for t in s.texts)]
    texts += [t for s in content.install for t in (s.text, s.why, s.stuck, s.text_vneid or "")]
    texts += [t.answer for t in content.faq.values()]
    for text in texts:
        assert not numbered.search(text), text


def test_the_flow_names_the_pictures_of_the_two_hard_steps(content: Content) -> None:
    shown = {s.id: s.picture for s in content.install if s.picture}
    assert shown == {"cccd_front": "cccd_photo", "cccd_back": "cccd_photo", "face": "face_check"}
    assert content.picture_ids == {"cccd_photo", "face_check"}


def test_a_step_naming_an_unknown_picture_is_reported(content: Content) -> None:
    steps = tuple(replace(s, picture="selfie") if s.id == "face" else s for s in content.install)
    with pytest.raises(ContentError, match="install step 'face': no picture 'selfie'"):
        check(replace(content, install=steps))
