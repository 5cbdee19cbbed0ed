"""Understanding what citizens type, where they are: typical and harmful phrasings in context,
the development set's floor figures, determinism, and the checks of the content it learns from.

Contexts are built the way the engine shows each screen (bench/understanding.py: the options
of the screen from content and config).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.understanding import DEV, Case, Contexts, Outcome, figures, load_cases, run
from bot.config import Config
from bot.content import (
    Content,
    ContentError,
    Guard,
    Intent,
    StepTopics,
    check,
    check_typed,
    load_content,
)
from bot.normalise import Normaliser
from bot.textnorm import fold
from bot.typed import Typed
from bot.understanding import (
    Clarify,
    Context,
    Number,
    Pick,
    Reading,
    Thresholds,
    Understanding,
    Unsure,
    question_of,
    reaction_of,
    typed_pairs,
)


@pytest.fixture(scope="module")
def understanding(content: Content) -> Understanding:
    return Understanding.from_content(content)


@pytest.fixture(scope="module")
def contexts(content: Content, config: Config) -> Contexts:
    return Contexts(content, config)


@pytest.fixture(scope="module")
def untyped(content: Content) -> Understanding:
    """Trained on the content without its typed messages, which make a training 3x longer:
    for the tests that train a second one beside it."""
    return Understanding(replace(content, typed=()))


def read(understanding: Understanding, contexts: Contexts, screen: str, text: str) -> Reading:
    return understanding.read(text, contexts.context(Case(text, screen, "oos")))


# Transcript-like: where the user is, what they typed, what the bot does. Many come from
# issue 10 (messages that got "can't answer" or a wrong answer before).
TYPICAL = [
    # A first message is read at the menu (the engine greets, then reads it there).
    ("", "Chữ ký số là gì?", "option:benefits"),
    ("menu", "cks co mat tien ko ad", "faq:cost"),
    ("menu", "răng phải quét mặt rứa", "faq:why_face"),
    ("menu", "ko nhan dc ma otp", "faq:otp_missing"),
    ("menu", "sao toi biet bot nay ko phai lua dao", "faq:bot_genuine"),
    ("menu", "huong dan cai", "option:install"),
    ("menu", "cai dat", "option:install"),
    ("menu", "e muon cai cks tren dt android, lam vnpt smartca", "option:install"),
    ("menu", "toi da cai", "option:done"),
    ("menu", "xoa het du lieu cua toi di", "nav:delete"),
    ("ready", "bat dau", "option:ok"),
    ("ready_sim", "đúng", "option:yes"),
    # "đúng" (right) is a word of the readiness screen's "yes"; "dừng" (stop) folds alike.
    ("ready", "đúng", "option:ok"),
    ("ready", "dừng", "nav:stop"),
    ("ready", "dung", "nav:stop"),
    ("remind_offer", "thoi khoi nhac nha", "option:no"),
    ("report_lives", "toi dang lam an o xa", "option:no"),
    ("choose_phone", "iphone", "option:iphone"),
    ("resume", "ok", "option:resume"),
    ("pin", "dc roi", "option:done"),
    ("pin", "ok", "option:done"),
    ("pin", "👍", "option:done"),
    ("register", "xong r", "option:done"),
    ("first_use", "dong y", "option:done"),
    ("cccd_front", "chup hoai ko dc, no bao anh bi loa", "stuck"),
    ("cccd_back", "van k dc", "stuck"),
    ("pin", "cam on nhe", "social:thanks"),
    ("face", "thoi de mai lam", "social:later"),
    ("menu", "gia lua hom nay", "oos"),
    # First aid first: an OTP already given, even in a story about the merger.
    (
        "menu",
        "hom qua co nguoi xung can bo xa goi bao cap nhat dia chi sau sap nhap, bao doc ma so "
        "gui ve may, toi doc roi. gio sao",
        "faq:otp_leaked",
    ),
    ("face", "no bao thong tin khong khop voi can cuoc", "faq:name_mismatch"),
    ("face", "quet mat hoai ma no bao khuon mat khong khop", "stuck"),
    # Words standing in a row in one option's label choose it.
    ("faq_menu", "thời hạn", "option:use"),
    # Out of scope at the menu, a complaint about the step on the VNeID log-in.
    ("vneid_login", "lấy lại mật khẩu vneid kiểu gì", "stuck"),
    ("menu", "lấy lại mật khẩu vneid kiểu gì", "oos"),
    # Asked back with "stuck" first, and speaking of the step's own subject: a complaint.
    ("pin", "nhap ma pin lan hai bao khong khop", "stuck"),
    # Asking why of the step's own subject: the step's "why" option, not its fixes.
    ("vneid_login", "tại sao phải đăng nhập vneid", "option:why"),
    # "cài cho rồi" (set up for me) and "nhập mã" in one story are not a code given away.
    (
        "menu",
        "Thằng cháu nó cài cho rồi mà giờ nó đi rồi. Điện thoại bảo nhập mã. "
        "Tôi không nhớ mã đó thì sao?",
        "faq:forgot_pin",
    ),
    # The OTP already read to a "sáp nhập" caller, told as a story: first aid. "có sao
    # không, tôi..." is not "không tới" (not arrived) across the comma.
    (
        "menu",
        "Chiều qua có người gọi bảo cập nhật sau sáp nhập, tôi nghe theo đọc cho họ cái mã số"
        " gửi về điện thoại. Xong họ cúp máy luôn. Giờ tôi lo quá, có sao không, tôi phải làm gì?",
        "faq:otp_leaked",
    ),
    # A code that just arrived ("vừa gửi về") and a helper asking for it: not given yet.
    (
        "menu",
        "Mã OTP vừa gửi về, người hướng dẫn bảo em đọc cho họ. Có được không ạ?",
        "faq:otp_share",
    ),
    # On the step where the OTP is typed into the app, entering it is the step done; telling
    # of a code read to a caller there is still first aid.
    ("register", "nhap ma roi", "option:done"),
    ("register", "có otp r ad, nhập r", "option:done"),
    ("register", "có người gọi xin mã, tôi đọc cho họ rồi", "faq:otp_leaked"),
    ("menu", "tôi lỡ nhập mã otp vào link người ta gửi rồi", "faq:otp_leaked"),
    # "Có" and "không có" a smartphone differ by one word the letters barely see.
    ("ready_phone", "co dt thong minh", "option:yes"),
    ("ready_phone", "ko co dt thong minh", "option:no"),
    # Central words with their diacritics: "nỏ" is "not" ("nó" is "it").
    ("pin", "làm mãi nỏ được", "stuck"),
    ("ready_cccd", "nỏ có chip", "option:no"),
]


@pytest.mark.parametrize(("screen", "text", "expected"), TYPICAL)
def test_typical_phrasings_in_context(
    understanding: Understanding, contexts: Contexts, screen: str, text: str, expected: str
) -> None:
    reading = read(understanding, contexts, screen, text)
    assert reaction_of(reading.decision) == expected, reading


# What the bot must never do with these messages (issue 10's harmful answers).
NEVER = [
    ("menu", "sao toi biet bot nay ko phai lua dao", "faq:scam_call"),
    ("menu", "con bac o binh duong lam ho bac dc ko", "faq:away_from_home"),
    ("menu", "bat dau", "faq:delete_data"),
    ("menu", "roi", "faq:lost_phone"),
    ("menu", "co du roi", "faq:vneid_diff"),
    ("menu", "lam cks dc ko", "faq:minors"),
    ("cccd_front", "chup hoai ko dc, no bao anh bi loa", "faq:face_fail"),
    ("ready", "bat dau", "nav:restart"),
    ("menu", "app misa dang goi video cho toi, nghe co bi lua khong", "faq:scam_call"),
    ("menu", "con trai o han quoc dang ky ho me duoc khong", "faq:away_from_home"),
    ("menu", "toi quen ma pin roi", "faq:otp_leaked"),
    ("menu", "mat cong qua", "faq:lost_phone"),
    ("menu", "toi 22 tuoi di lam roi co cai duoc khong", "faq:minors"),
    ("menu", "app momo bao thiet bi khong an toan", "faq:device_insecure"),
    ("delete_confirm", "khong, dung xoa ma", "option:erase"),
    ("privacy", "thoi khong xoa du lieu dau", "option:delete"),
    ("menu", "toi 70 tuoi roi lam duoc khong", "faq:minors"),
    # Another procedure's fee, papers, an e-wallet: not our "cost", "requirements", "safety".
    ("menu", "lam so do het bao nhieu tien", "faq:cost"),
    ("menu", "chia dat cho con can giay to gi", "faq:requirements"),
    ("menu", "vi momo co an toan khong", "faq:safety"),
    # Someone else's account and PIN, asking where to report: never "from anywhere".
    (
        "menu",
        "toi lam o nuoc ngoai, dung tai khoan cua bo de ky giay to duoc khong",
        "faq:away_from_home",
    ),
    ("menu", "lam xong tren thanh pho roi thi bao lai cho thon the nao", "faq:away_from_home"),
    ("menu", "toi muon khieu nai can bo dia chinh", "nav:human"),
    ("complete", "mat thoi gian qua", "faq:time_needed"),
    ("menu", "xa nhap roi ma giay to con ghi ten cu", "faq:otp_leaked"),
    # Cancelling an invoice is not revoking the signature; registering a business is not
    # "does a household business need one".
    ("menu", "toi xuat hoa don VAT bi sai ten khach, huy the nao", "faq:revoke"),
    ("menu", "dang ky kinh doanh lam o dau", "faq:business_use"),
    # The power company's or the police's number is not "see a person" about the signature.
    ("menu", "cho xin so tong dai dien luc huyen", "nav:human"),
]


@pytest.mark.parametrize(("screen", "text", "never"), NEVER)
def test_harmful_answers_are_not_given(
    understanding: Understanding, contexts: Contexts, screen: str, text: str, never: str
) -> None:
    assert reaction_of(read(understanding, contexts, screen, text).decision) != never


ACKNOWLEDGEMENTS = ["ok", "roi", "dc", "uh", "co", "dong y", "xong", "👍", "vang", "k"]
SCREENS = ["menu", "faq_menu", "privacy", "delete_confirm", "report_again", "pin", "human"]


@pytest.mark.parametrize("screen", SCREENS)
def test_a_short_acknowledgement_never_fires_a_harmful_reaction(
    understanding: Understanding, contexts: Contexts, content: Content, screen: str
) -> None:
    harmful = {f"faq:{t.id}" for t in content.faq.values() if t.harm}
    harmful |= {i.label for i in content.intents.values() if i.harm}
    context = contexts.context(Case("", screen, "oos"))
    harm_options = {
        f"option:{o.id}" for o in context.options if set(o.roles) & set(content.harm_roles)
    }
    assert screen != "delete_confirm" or harm_options, "the erase option must be harmful"
    for text in ACKNOWLEDGEMENTS:
        decision = understanding.read(text, context).decision
        offered = set(decision.candidates) if isinstance(decision, Clarify) else set()
        done = {reaction_of(decision)} | offered
        assert not done & (harmful | harm_options), (screen, text, decision)


def test_numbers_choose_the_options_shown_or_are_out_of_range(
    understanding: Understanding, contexts: Contexts
) -> None:
    assert read(understanding, contexts, "menu", "2").decision == Number(2, True)
    for text in ("5", "0", "-2", "12"):
        assert read(understanding, contexts, "pin", text).decision == Number(int(text), False)


def test_scam_signs_anywhere_in_a_message(
    understanding: Understanding, contexts: Contexts
) -> None:
    story = (
        "hom qua co nguoi goi dien xung la cong an xa moi, bao phai cap nhat dia chi sau "
        "sap nhap, ho bao doc ma otp. toi doc roi. gio phai lam sao"
    )
    assert read(understanding, contexts, "menu", story).scam
    assert not read(understanding, contexts, "menu", "chu ky so la gi").scam


@pytest.fixture(scope="module")
def dev_outcomes(understanding: Understanding, contexts: Contexts) -> list[Outcome]:
    return run(
        load_cases([DEV]),
        contexts,
        understanding,
        lambda c: understanding.read(c.text, contexts.context(c)).decision,
    )


def test_asking_back_offers_two_or_three_close_candidates(dev_outcomes: list[Outcome]) -> None:
    asked = [o.decision for o in dev_outcomes if isinstance(o.decision, Clarify)]
    assert asked, "the development set has ambiguous messages"
    assert all(1 <= len(d.candidates) <= 3 for d in asked)
    assert all(not c.startswith(("social:", "oos")) for d in asked for c in d.candidates)


def test_a_reading_explains_itself(understanding: Understanding, contexts: Contexts) -> None:
    reading = read(understanding, contexts, "menu", "cai chu ky so co ton tien khong ad")
    assert reading.how == "classifier"
    assert reading.candidates[0].reaction == "faq:cost"
    scores = [c.score for c in reading.candidates]
    assert scores == sorted(scores, reverse=True)
    assert 2 <= len(scores) <= 5
    assert reading.nearest


def test_the_development_set_meets_its_floor(dev_outcomes: list[Outcome]) -> None:
    """Floors a little under the calibrated figures (bench/understanding.py prints them),
    so that a content edit that hurts understanding fails here."""
    outcomes = dev_outcomes
    assert len(outcomes) >= 800
    result = figures(outcomes)
    assert result.top1 >= 0.93, result
    assert result.declined_oos >= 0.93, result
    assert result.wrong <= 0.02, result
    assert result.harmful == 0.0, [o.case.text for o in outcomes if o.harmful]


def test_the_development_set_is_not_taught(content: Content) -> None:
    """Apart from short replies ("ok", "roi"), no case is a phrasing the content teaches."""
    taught = {fold(e) for t in content.faq.values() for e in (t.title, *t.examples)}
    taught |= {fold(e) for i in content.intents.values() for e in i.examples}
    taught |= {fold(e) for e in content.faq_negative}
    cases = load_cases([DEV])
    assert not [c.text for c in cases if fold(c.text) in taught and len(fold(c.text).split()) > 2]
    per_topic = {t: sum(c.expect == f"faq:{t}" for c in cases) for t in content.faq}
    assert min(per_topic.values()) >= 12, per_topic
    assert sum(c.oos for c in cases) >= 100
    assert sum(bool(c.never) for c in cases) >= 60


def test_reading_is_deterministic(content: Content, untyped: Understanding) -> None:
    # Two trainings of the content's own examples.
    again = Understanding(replace(content, typed=()))
    for case in load_cases([DEV])[::5]:
        context = Context(screen=case.screen)
        assert again.read(case.text, context) == untyped.read(case.text, context)


def test_every_label_the_content_teaches_is_learnt(
    content: Content, understanding: Understanding
) -> None:
    expected = {f"faq:{t}" for t in content.faq} | {i.label for i in content.intents.values()}
    assert set(understanding._labels) == expected | {"oos"}


def test_typed_messages_teach_their_reaction_without_the_screen(content: Content) -> None:
    """A typed message teaches the classifier the label of its reaction: an option by the
    intents that choose it; out of scope only from three words; a text labelled two ways or
    already taught is left out."""
    typed = (
        Typed("chi em cach cai cai nay voi", "menu", "option:install"),
        Typed("dc r nhe ban", "cccd_front", "option:done"),
        Typed("anh no cu bi loa sang", "cccd_front", "stuck"),
        Typed("bao gio thi lua chin vay ban", "menu", "oos"),
        Typed("ok ban", "menu", "oos"),
        Typed("co roi nha ban", "ready_cccd", "option:yes"),
        Typed("co roi nha ban", "cccd_front", "option:done"),
        Typed("gio mai moi co tien vay", "menu", "faq:no_such_topic"),
        Typed(content.faq["cost"].examples[0], "menu", "faq:cost"),
    )
    normaliser = Normaliser(content.lexicon, content.emoji, content.units)
    base = replace(content, typed=())
    taught, labels = Understanding(base).training
    pairs = typed_pairs(replace(base, typed=typed), normaliser, set(taught), set(labels))
    assert pairs == [
        (normaliser.text(m.text), label)
        for m, label in zip(
            typed[:4], ("nav:install", "reply:done", "reply:stuck", "oos"), strict=True
        )
    ]


def test_the_content_learns_from_its_typed_messages(
    content: Content, understanding: Understanding
) -> None:
    assert len(content.typed_messages()) >= 8000
    texts, _ = understanding.training
    alone, _ = Understanding(replace(content, typed=())).training
    assert len(texts) - len(alone) >= 3000


def test_a_harmful_short_message_is_not_acted_on(
    understanding: Understanding, contexts: Contexts
) -> None:
    # One word that, longer, would be a request to delete: not enough to delete.
    assert read(understanding, contexts, "menu", "xoa").decision == Unsure()
    assert read(understanding, contexts, "delete_confirm", "ok").decision == Unsure()
    assert read(understanding, contexts, "delete_confirm", "xoa het di ban").decision == Pick(
        "erase"
    )


# --- content checks -------------------------------------------------------------------------


def _broken(content: Content, **changes: object) -> str:
    with pytest.raises(ContentError) as error:
        check(replace(content, **changes))  # type: ignore[arg-type]
    return str(error.value)


def test_content_checks_catch_bad_intents(content: Content) -> None:
    intents = dict(content.intents)
    intents["odd"] = Intent(id="odd", kind="wish", examples=("toi uoc",))
    assert "kind must be one of" in _broken(content, intents=intents)
    intents["odd"] = Intent(id="odd", kind="nav", examples=("di dau do",))
    assert "needs a title" in _broken(content, intents=intents)
    intents["odd"] = Intent(id="odd", kind="reply", examples=())
    assert "no examples" in _broken(content, intents=intents)
    intents["odd"] = Intent(id="odd", kind="reply", examples=("dạ có",))
    assert "taught as both" in _broken(content, intents=intents)


def test_content_checks_catch_typed_messages_of_unknown_screens_or_reactions(
    content: Content,
) -> None:
    assert check_typed(content) == []
    odd = (Typed("xong r", "old_screen", "option:done"), Typed("phi?", "menu", "faq:price"))
    problems = check_typed(replace(content, typed=odd))
    assert ["unknown screen 'old_screen'" in problems[0], "'faq:price'" in problems[1]] == [
        True,
        True,
    ]


def test_content_checks_catch_bad_roles_and_steps(content: Content) -> None:
    roles = {**content.roles, "goto:menu": ("nav:nowhere",)}
    assert "unknown label 'nav:nowhere'" in _broken(content, roles=roles)
    roles = {**content.roles, "colour:red": ("nav:menu",)}
    assert "must be <" in _broken(content, roles=roles)
    steps = {**content.step_topics, "dance": StepTopics(stuck=("faq:cost",))}
    assert "not an install step" in _broken(content, step_topics=steps)
    steps = {**content.step_topics, "pin": StepTopics(why=("faq:nothing",))}
    assert "unknown label 'faq:nothing'" in _broken(content, step_topics=steps)
    assert "same: unknown label" in _broken(content, same={"nav:human": ("faq:nope",)})


def test_content_checks_catch_bad_guards(content: Content) -> None:
    guards = {**content.guards, "faq:nothing": Guard(needs=("x",))}
    assert "guard: unknown label 'faq:nothing'" in _broken(content, guards=guards)
    guards = {**content.guards, "faq:cost": Guard(bars=("tien",))}
    assert "is barred by ['tien']" in _broken(content, guards=guards)
    guards = {**content.guards, "faq:cost": Guard(needs=("hoa don",))}
    assert "has none of its `needs`" in _broken(content, guards=guards)


def test_a_guard_bars_its_answer_whatever_the_classifier_says(
    content: Content, contexts: Contexts, untyped: Understanding
) -> None:
    text = "cai chu ky so co mat tien ko"
    free = untyped
    assert reaction_of(free.read(text, contexts.context(Case(text, "menu", ""))).decision) == (
        "faq:cost"
    )
    small = replace(content, typed=())
    guarded = Understanding(replace(small, guards={"faq:cost": Guard(bars=("mat tien",))}))
    decision = guarded.read(text, contexts.context(Case(text, "menu", ""))).decision
    assert reaction_of(decision) != "faq:cost"
    assert not isinstance(decision, Clarify) or "faq:cost" not in decision.candidates


def test_a_message_seen_again_is_read_alike_from_memory(
    content: Content, contexts: Contexts
) -> None:
    understanding = Understanding(content)
    context = contexts.context(Case("", "ready", "oos"))
    first = understanding.read("quay lại", context)
    assert understanding.read("quay lại", context) is first
    understanding.thresholds = replace(understanding.thresholds, prior=1.0)
    again = understanding.read("quay lại", context)
    assert again is not first
    assert again == first


def test_unknown_thresholds_are_refused() -> None:
    with pytest.raises(ContentError, match="unknown thresholds"):
        Thresholds.from_mapping({"acept": 0.5})
    assert Thresholds.from_mapping({"accept": 0.6}).accept == 0.6


def test_the_thresholds_file_is_the_calibrated_one(
    content: Content, understanding: Understanding
) -> None:
    assert content.thresholds, "content/vi/thresholds.toml is missing"
    assert understanding.thresholds == Thresholds.from_mapping(content.thresholds)


def test_a_story_asked_back_is_settled_by_its_question(
    understanding: Understanding, contexts: Contexts
) -> None:
    story = "Tôi đi làm xa. Về quê thì không kịp. Mã của tôi quên mất rồi làm sao?"
    reading = read(understanding, contexts, "menu", story)
    assert (reaction_of(reading.decision), reading.how) == ("faq:forgot_pin", "question")


def test_the_question_of_a_story() -> None:
    story = "Tui bán hàng ngoài chợ. Tối mới rảnh. Cài cái này mất bao lâu hả em?"
    assert question_of(story) == "Cài cái này mất bao lâu hả em?"
    assert question_of("Cài xong rồi. Ký sao? Em ơi?") == "Ký sao? Em ơi?"
    assert question_of("Nhà ở xa. Con đi làm. Chỉ tui cài") == "Con đi làm. Chỉ tui cài"
    assert question_of("cai chu ky so mat bao lau") == ""


def test_the_fingerprint_follows_what_the_training_is_made_of(content: Content) -> None:
    """Equal fingerprints, equal training sets: a kept model is loaded by it (app/training.py)
    without gathering 9,000 examples at every start."""
    same = Understanding(load_content("vi")).fingerprint()
    assert Understanding(content).fingerprint() == same
    typed = content.typed_messages()
    assert Understanding(replace(content, typed=typed)).fingerprint() != same  # read, not files
    one_less = Understanding(replace(content, typed=typed[1:])).fingerprint()
    assert one_less != Understanding(replace(content, typed=typed)).fingerprint()
    lexicon = {**content.lexicon, "cks": "chu ky so ca nhan"}
    assert Understanding(replace(content, lexicon=lexicon)).fingerprint() != same
