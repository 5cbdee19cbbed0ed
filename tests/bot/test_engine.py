"""Engine behaviour that transcripts do not show well: state, events, edge cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.config import Config
from bot.content import Content
from bot.engine import GLOBAL_PREFIX, Engine, screen_key, sensitive_kind
from bot.model import Blocked, Choice, Input, Media, Reply, ScreenRef, Start, State, Text, Timeout
from tests.conftest import T0


def walk(engine: Engine, *inputs: Input | str, state: State | None = None) -> Reply:
    """Apply inputs in order ("!option" taps a button of the current screen)."""
    state = state or State()
    reply = Reply(state=state)
    now = T0
    for item in inputs:
        now += timedelta(minutes=1)
        if isinstance(item, str):
            event: Input = (
                Choice(item[1:], screen_key(state)) if item.startswith("!") else Text(item)
            )
        else:
            event = item
        reply = engine.advance(state, event, now)
        state = reply.state
    return reply


def kinds(reply: Reply) -> list[str]:
    return [e.kind for e in reply.events]


INSTALL_VNPT = ("/start", "!install", "!ok", "!i:vnpt", "!android", "!no")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("123456", "code"),
        ("ma cua toi la 8812", "code"),
        ("038123456789", "id"),
        ("038 123 456 789", "id"),
        ("0912345678", "phone"),
        ("+84 912 345 678", "phone"),
        ("4111-1111-1111-1111", "card"),
        ("năm 2025 có miễn phí không", None),
        ("bước 4", None),
        ("1", None),
        ("chu ky so la gi", None),
    ],
)
def test_sensitive_kind(text: str, kind: str | None) -> None:
    assert sensitive_kind(text) == kind


def test_new_user_is_greeted_with_the_privacy_promise(engine: Engine, content: Content) -> None:
    reply = walk(engine, Start())
    assert [m.text for m in reply.messages[:2]] == [
        content.texts["greeting"].replace("{commune}", "Xã Nông Cống"),
        content.texts["privacy_promise"],
    ]
    assert reply.state.screen == "menu"
    assert kinds(reply) == ["started", "step"]


def test_any_first_message_gets_the_greeting(engine: Engine) -> None:
    reply = walk(engine, "alo alo")
    assert "started" in kinds(reply)
    assert reply.messages[-1].options, "the menu is shown"


def test_first_message_that_is_a_question_gets_greeting_and_answer(engine: Engine) -> None:
    reply = walk(engine, "cai chu ky so co mat tien ko")
    assert kinds(reply)[0] == "started"
    assert [e.detail for e in reply.events if e.kind == "faq"] == ["cost"]
    assert reply.state.screen == "menu"


def test_completion_event_carries_the_answers(engine: Engine) -> None:
    reply = walk(
        engine,
        Start("VK7M2QX"),
        "!done",
        "!yes",
        "!i:16279",
        "!i:tay-son",
        "!yes",
        "!i:misa",
    )
    completed = [e for e in reply.events if e.kind == "completed"]
    assert len(completed) == 1
    assert completed[0].data == {
        "commune": "16279",
        "village": "tay-son",
        "lives_here": "yes",
        "provider": "misa",
        "source": "self",
        "referral": "VK7M2QX",
    }
    assert reply.state.answers["consent"] == engine.content.texts["consent_version"]
    assert "completed_at" in reply.state.answers


def test_no_completion_without_consent(engine: Engine) -> None:
    reply = walk(engine, "/start", "!done", "!no")
    assert "consent_declined" in kinds(reply)
    assert "consent" not in reply.state.answers
    # Forcing the complete screen without consent lands on the consent question instead.
    forced_state = replace(reply.state, screen="report_provider", shown="report_provider")
    forced = engine.advance(forced_state, Text("1"), T0)
    assert "completed" not in kinds(forced)
    assert forced.state.screen == "report_consent"


def test_install_steps_count_per_route(engine: Engine) -> None:
    app = walk(engine, *INSTALL_VNPT)
    assert engine.progress(app.state) == (1, 9)
    vneid = walk(engine, "/start", "!install", "!ok", "!i:vneid", "!iphone", "!no")
    assert engine.progress(vneid.state) == (1, 8)
    assert vneid.messages[-1].text.startswith("Bước 1/8")


def test_done_records_the_step_and_moves_on(engine: Engine) -> None:
    reply = walk(engine, *INSTALL_VNPT, "!done")
    assert [(e.kind, e.step) for e in reply.events] == [("done", "store"), ("step", "register")]
    assert reply.messages[-1].text.startswith("Bước 2/9")


def test_stuck_is_recorded_per_step(engine: Engine) -> None:
    reply = walk(engine, *INSTALL_VNPT, "!done", "!stuck")
    assert [(e.kind, e.step) for e in reply.events] == [("stuck", "register")]
    assert reply.state.view == "stuck"


def test_referral_first_touch_wins(engine: Engine) -> None:
    reply = walk(engine, Start("VAAAAAA"), Start("VBBBBBB"), "/start VCCCCCC")
    assert reply.state.referral == "VAAAAAA"


def test_malformed_referral_is_ignored(engine: Engine) -> None:
    reply = walk(engine, Start("x" * 65), Start("bad code!"))
    assert reply.state.referral is None


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ("0912345678", "phone"),
        ("038123456789", "id"),
        ("84912345678", "phone"),
        ("123456", "code"),
    ],
)
def test_a_start_payload_with_a_number_is_never_kept_and_is_warned_about(
    engine: Engine, content: Content, payload: str, kind: str
) -> None:
    reply = engine.advance(State(), Start(payload), T0)
    assert reply.state.referral is None
    assert payload not in reply.state.to_json()
    assert [(e.kind, e.detail) for e in reply.events if e.kind in ("referral", "sensitive")] == [
        ("sensitive", kind)
    ]
    assert all(payload not in str(e) for e in reply.events)
    assert reply.delete_input
    assert reply.messages[0].text == content.texts[f"sensitive_{kind}"]
    assert reply.state.screen == "menu", "greeted as anyone opening the bot"
    assert engine.must_delete(Start(payload)), "removed even when the flood limit holds it"


@pytest.mark.parametrize("payload", ["vol_42", "V12345", "VK7M2QXY", "vk7m2qx", "VK7M2Q0", "abc"])
def test_only_codes_the_bot_issues_are_kept_as_referrals(engine: Engine, payload: str) -> None:
    assert engine.advance(State(), Start(payload), T0).state.referral is None
    assert engine.advance(State(), Start("VK7M2QX"), T0).state.referral == "VK7M2QX"


def test_the_referral_format_is_the_one_volunteer_codes_are_issued_in() -> None:
    from bot.engine.guards import CODE_ALPHABET, REFERRAL
    from storage.staff import VOLUNTEER_ALPHABET, VOLUNTEER_PREFIX

    assert VOLUNTEER_ALPHABET == CODE_ALPHABET
    assert REFERRAL.match(VOLUNTEER_PREFIX + VOLUNTEER_ALPHABET[-6:])
    assert REFERRAL.match(VOLUNTEER_PREFIX + VOLUNTEER_ALPHABET[:6])


def test_unknown_stored_step_lands_at_menu_with_a_note(engine: Engine, content: Content) -> None:
    old = State(screen="removed_screen_2025", answers={"provider": "vnpt"})
    reply = engine.advance(old, Choice("done", "removed_screen_2025"), T0)
    assert reply.messages[0].text == content.texts["unknown_step"]
    assert reply.state.screen == "menu"
    assert reply.state.answers == {"provider": "vnpt"}
    assert kinds(reply)[0] == "unknown_step"


def test_timeout_reminds_only_mid_flow(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT, "!done")
    reminded = engine.advance(mid.state, Timeout(), T0 + timedelta(days=1))
    assert kinds(reminded)[0] == "reminder"
    assert reminded.state.screen == "resume"
    assert reminded.state.back_to == ScreenRef("register")
    at_menu = walk(engine, "/start")
    assert engine.advance(at_menu.state, Timeout(), T0).messages == ()


def test_reminders_are_offered_once_before_the_first_step(engine: Engine) -> None:
    offer = walk(engine, "/start", "!install", "!ok", "!i:vnpt", "!android")
    assert offer.state.screen == "remind_offer"
    said_yes = engine.advance(offer.state, Choice("yes", "remind_offer"), T0)
    assert ("reminders", "on") in [(e.kind, e.detail) for e in said_yes.events]
    assert said_yes.state.screen == "store"
    # Starting over keeps the answer: not asked again.
    restart = ("/start", "!restart", "!install", "!ok", "!i:viettel", "!iphone")
    again = walk(engine, *restart, state=said_yes.state)
    assert again.state.screen != "remind_offer"
    assert engine.progress(again.state) == (1, 9)


def test_stop_and_block_turn_reminders_off(engine: Engine) -> None:
    offer = walk(engine, "/start", "!install", "!ok", "!i:vnpt", "!android")
    on = engine.advance(offer.state, Choice("yes", "remind_offer"), T0)
    stopped = engine.advance(on.state, Text("dừng"), T0)
    assert ("reminders", "off") in [(e.kind, e.detail) for e in stopped.events]
    assert stopped.state.answers["reminders"] == "off"
    blocked = engine.advance(on.state, Blocked(), T0)
    assert ("reminders", "off") in [(e.kind, e.detail) for e in blocked.events]
    # Someone who never said yes has nothing to turn off.
    never = walk(engine, *INSTALL_VNPT)
    assert "reminders" not in kinds(engine.advance(never.state, Text("dừng"), T0))


def test_a_reminder_is_one_message(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT, "!done")
    reminded = engine.advance(mid.state, Timeout(), T0 + timedelta(days=1))
    (message,) = reminded.messages
    assert message.text.startswith(engine.content.texts["reminder"])
    assert [o.id for o in message.options] == ["resume", "restart"]


def test_resumable_steps_are_install_steps_and_resumable_screens(engine: Engine) -> None:
    steps = engine.resumable_steps()
    assert {"store", "register", "choose_provider"} <= set(steps)
    assert "menu" not in steps


def test_timeout_does_not_change_last_activity(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reminded = engine.advance(mid.state, Timeout(), T0 + timedelta(days=1))
    assert reminded.state.last_at == mid.state.last_at


def test_idle_user_is_offered_to_resume(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT, "!done")
    later = engine.advance(mid.state, Text("xin chao"), T0 + timedelta(hours=7))
    assert later.state.screen == "resume"
    assert "Bước 2/9" in later.messages[-1].text
    # Pressing the step's own button after a break just continues.
    button = engine.advance(mid.state, Choice("done", "register"), T0 + timedelta(hours=7))
    assert button.state.screen == "cccd_front"


def test_pick_list_pages_cycle(engine: Engine) -> None:
    reply = walk(engine, "/start", "!done", "!yes", "!i:16279")
    first = [o.id for o in reply.messages[-1].options]
    assert first == ["i:dong-hoa", "i:trung-chinh", "i:tay-son", "more"]
    second = walk(engine, "!more", state=reply.state)
    assert [o.id for o in second.messages[-1].options] == ["i:kp-1", "i:kp-2", "i:unknown", "more"]
    again = walk(engine, "!more", state=second.state)
    assert [o.id for o in again.messages[-1].options] == first


def test_typed_village_name_without_accents(engine: Engine) -> None:
    reply = walk(engine, "/start", "!done", "!yes", "!i:16279", "khu pho 2")
    assert reply.state.answers["village"] == "kp-2"
    assert reply.state.screen == "report_lives"


def test_ambiguous_typed_name_is_not_guessed(engine: Engine) -> None:
    reply = walk(engine, "/start", "!done", "!yes", "!i:16279", "thon")
    assert "village" not in reply.state.answers
    assert reply.state.screen == "report_village"


def test_commune_not_served_is_named(engine: Engine) -> None:
    reply = walk(engine, "/start", "!done", "!yes", "phuong hac thanh")
    assert "Phường Hạc Thành" in reply.messages[0].text
    assert "Xã Nông Cống" in reply.messages[0].text
    assert "commune" not in reply.state.answers


def test_global_option_works_from_any_screen(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = engine.advance(mid.state, Choice(GLOBAL_PREFIX + "human", "global"), T0)
    assert reply.state.screen == "human"
    assert reply.state.back_to == ScreenRef("store")


@pytest.mark.parametrize("action", ["erase", "consent", "restart", "nonsense"])
def test_forged_global_button_cannot_change_data(engine: Engine, action: str) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = engine.advance(mid.state, Choice(GLOBAL_PREFIX + action, "global"), T0)
    assert not reply.erase
    assert kinds(reply) == ["stale"]
    assert reply.state.answers == mid.state.answers
    assert reply.state.screen == "store"


def test_erase_needs_confirmation(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    asked = walk(engine, "xoa du lieu", state=mid.state)
    assert not asked.erase
    assert asked.state.screen == "delete_confirm"
    confirmed = walk(engine, "!erase", state=asked.state)
    assert confirmed.erase
    assert confirmed.state == State()


def test_media_never_changes_the_step(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    for kind in ("photo", "document", "sticker", "voice", "location", "contact", "edited"):
        reply = engine.advance(mid.state, Media(kind), T0)
        assert reply.state.screen == "store"
        assert reply.messages, kind


def test_photo_on_a_channel_that_cannot_delete(engine: Engine, content: Content) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = engine.advance(mid.state, Media("photo"), T0, can_delete=False)
    assert reply.messages[0].text == content.texts["media_photo_kept"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 5000, "abc\x00def"])
def test_bad_text_gets_a_kind_reply(engine: Engine, text: str) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = engine.advance(mid.state, Text(text), T0)
    assert 1 <= len(reply.messages) <= 2
    assert reply.state.screen == "store"
    assert not {"done", "faq"} & set(kinds(reply))


def test_typed_option_number_and_words(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    assert walk(engine, "1", state=mid.state).state.screen == "register"
    assert walk(engine, "XONG!", state=mid.state).state.screen == "register"
    assert walk(engine, "2", state=mid.state).state.view == "stuck"
    assert walk(engine, "bi vuong", state=mid.state).state.view == "stuck"
    assert walk(engine, "9", state=mid.state).state.screen == "store"


def test_no_answer_offers_human_help(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = walk(engine, "hom nay troi mua khong biet lua co bi ung", state=mid.state)
    assert "faq_miss" in kinds(reply)
    assert [o.id for o in reply.messages[0].options] == [GLOBAL_PREFIX + "human"]


def test_every_screen_has_a_way_on(engine: Engine, content: Content) -> None:
    """Every screen and install view shows options (or, at least, a way back)."""
    for step in [*content.screens, *(s.id for s in content.install)]:
        for view in ("", "stuck", "why") if content.install_step(step) else ("",):
            state = State(
                screen=step,
                view=view,
                back_to=ScreenRef("store"),
                answers={"provider": "vnpt", "commune": "16279", "consent": "v"},
            )
            if content.screens.get(step) and content.screens[step].kind == "complete":
                continue
            messages = engine.render(state)
            assert messages, step
            assert messages[-1].options, f"{step}.{view} has no options"
            most = 5 if step == "menu" else 4  # four where possible; the hub menu has five
            assert len(messages[-1].options) <= most, f"{step}.{view} has too many options"


def test_state_round_trips_through_json(engine: Engine) -> None:
    reply = walk(engine, Start("VK7M2QX"), *INSTALL_VNPT[1:], "!done")
    assert State.from_json(reply.state.to_json()) == reply.state


def test_continue_without_a_detour_stays_on_the_step(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT, "!done")
    reply = walk(engine, "tiếp tục", state=mid.state)
    assert reply.state.screen == "register"
    assert reply.messages[-1].text.startswith("Bước 2/9")


def test_a_described_scam_offers_the_scam_card(engine: Engine) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = walk(engine, "co nguoi goi dien xung cong an doi ma otp", state=mid.state)
    assert "scam_offered" in kinds(reply)
    offers = [o.id for m in reply.messages for o in m.options]
    assert GLOBAL_PREFIX + "scam" in offers
    card = engine.advance(reply.state, Choice(GLOBAL_PREFIX + "scam", "global"), T0)
    assert card.state.screen == "scam_signs"
    assert card.state.back_to == ScreenRef("store")
    back = walk(engine, "!back", state=card.state)
    assert back.state.screen == "store"


def test_an_ordinary_question_offers_no_scam_card(engine: Engine) -> None:
    reply = walk(engine, "/start", "cks co mat tien ko")
    assert "scam_offered" not in kinds(reply)


def test_links_outside_the_allow_list_are_hidden(content: Content, config: Config) -> None:
    texts = {
        **content.texts,
        "welcome_back": "Vào https://vneid-capnhat.top/app hoặc dichvucong.gov.vn.",
    }
    engine = Engine(replace(content, texts=texts), config)
    reply = walk(engine, "/start", "/start")
    shown = reply.messages[0].text
    assert "vneid-capnhat" not in shown
    assert content.texts["link_removed"] in shown
    assert "dichvucong.gov.vn" in shown


def test_privacy_notice_tells_what_is_kept_and_offers_deletion(engine: Engine) -> None:
    reply = walk(engine, "/start", "/baomat")
    assert reply.state.screen == "privacy"
    assert "12 tháng" in "".join(m.text for m in reply.messages)
    options = [o.id for o in reply.messages[-1].options]
    assert "delete" in options
    assert "withdraw" not in options, "nothing to withdraw before consenting"


def test_withdrawing_consent_forgets_the_report(engine: Engine) -> None:
    done = walk(engine, "/start", "!done", "!yes", "!i:16279", "!i:tay-son", "!no", "!i:misa")
    assert "completed_at" in done.state.answers
    # Typed, it leads to the privacy screen, whose option does it (it cannot be undone).
    typed = walk(engine, "rút lại đồng ý", state=done.state)
    assert typed.state.screen == "privacy"
    reply = walk(engine, "!withdraw", state=typed.state)
    assert "consent_withdrawn" in kinds(reply)
    for key in ("consent", "commune", "village", "lives_here", "completed_at"):
        assert key not in reply.state.answers
    assert reply.state.screen == "menu"


def test_a_first_hello_is_greeted_once(engine: Engine, content: Content) -> None:
    reply = walk(engine, "Xin chào")
    texts = [m.text for m in reply.messages]
    assert len(texts) == 3
    assert content.texts["welcome_back"] not in texts
    assert kinds(reply).count("started") == 1


def test_start_on_the_continue_screen_offers_the_step_again(engine: Engine) -> None:
    """A crash may lose the answer to "continue?": /start must not drop the user at the menu."""
    mid = walk(engine, *INSTALL_VNPT, "!done")
    asked = engine.advance(mid.state, Start(), T0 + timedelta(hours=8))
    assert asked.state.screen == "resume"
    again = engine.advance(asked.state, Start(), T0 + timedelta(hours=8, minutes=1))
    assert again.state.screen == "resume"
    assert "Bước 2/9" in again.messages[-1].text
    offer = walk(engine, "/start", "!install", "!ok", "!i:vnpt", "!android")
    back = engine.advance(offer.state, Start(), T0 + timedelta(hours=8))
    assert back.state.screen == "resume"
    assert back.state.back_to == ScreenRef("remind_offer")


@pytest.mark.parametrize(
    "noise", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\ufeff", "\u202e"]
)
def test_control_and_invisible_characters_do_not_hide_what_was_typed(
    engine: Engine, noise: str
) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    clean = engine.advance(mid.state, Text("chu ky so la gi"), T0)
    noisy = engine.advance(mid.state, Text(f"chu ky{noise} so la gi{noise}"), T0)
    assert "faq" in kinds(clean)
    assert noisy.messages == clean.messages


def test_an_id_number_split_by_invisible_characters_is_still_caught(engine: Engine) -> None:
    reply = walk(engine, *INSTALL_VNPT, "038\u200b123\u200b456\u200b789")
    assert "sensitive" in kinds(reply)
    assert reply.delete_input


def test_only_control_characters_are_not_understood(engine: Engine, content: Content) -> None:
    mid = walk(engine, *INSTALL_VNPT)
    reply = engine.advance(mid.state, Text("\x00\x00\u200b"), T0)
    assert reply.messages[0].text == content.texts["not_understood"]
