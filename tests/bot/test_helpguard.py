"""The guard on what a helper may pass on to a citizen (bot/helpguard.py): asking for a
one-time code, a PIN or password, a photo of the card or of the face is held back, however
it is typed (accents or none, abbreviations, a question mark inside); telling a citizen to
type the code into the app, or never to give it to anyone, is not."""

from __future__ import annotations

import pytest

from bot.content import Content
from bot.helpguard import Guard
from bot.normalise import Normaliser

HELD = {
    "gửi mã OTP cho anh": "otp",
    "Gửi mã xác nhận cho em nhé": "otp",
    "gui ma otp cho a": "otp",
    "bác đọc mã otp cho cháu": "otp",
    "mã OTP là bao nhiêu ạ": "otp",
    "bác nhắn em cái mã vừa nhận": "otp",
    "gửi giúp em, mã OTP ấy": "otp",
    "không sao, gửi em mã": "otp",
    "đọc cái mã đó cho cháu": "otp",
    "gửi mk cho e": "pin",
    "mã pin là mấy": "pin",
    "mật khẩu bác nhớ không? đọc em nghe": "pin",
    "bác chụp ảnh căn cước gửi em xem": "card",
    "cho cháu xin ảnh mặt trước căn cước": "card",
    "số căn cước của bác là bao nhiêu": "card",
    "chụp mặt bác gửi qua đây": "face",
    "bác gửi selfie cho em": "face",
    "Bác ơi. Bác bấm Tiếp tục rồi gửi em mã OTP nhé!": "otp",
}

PASSED = (
    "bác gõ mã OTP vào ứng dụng nhé",
    "đừng gửi mã OTP cho ai",
    "mã OTP chỉ gõ vào ứng dụng, không đọc cho ai cả",
    "ứng dụng gửi mã về máy bác, bác gõ vào ô",
    "bác nhận được mã chưa?",
    "không ai được hỏi mật khẩu của bác",
    "bác chụp mặt trước căn cước trong ứng dụng",
    "bác đặt thẻ lên nền tối rồi chụp lại",
    "chiều mai 3 giờ cháu qua nhà bác nhé",
    "bác gửi em ảnh chụp màn hình được không",
    "bác bấm vào đây mà gửi cho em ảnh màn hình nhé",
)


@pytest.fixture(scope="module")
def guard(content: Content) -> Guard:
    return Guard.from_content(content)


@pytest.mark.parametrize(("text", "kind"), HELD.items())
def test_asking_for_a_secret_is_held_back(guard: Guard, text: str, kind: str) -> None:
    assert guard.held_back(text) == kind


@pytest.mark.parametrize("text", PASSED)
def test_guiding_the_citizen_passes(guard: Guard, text: str) -> None:
    assert guard.held_back(text) is None


def test_the_lists_come_from_content_and_must_be_complete(content: Content) -> None:
    with pytest.raises(ValueError, match="otp"):
        Guard({"pin": ["pin"], "asks": ["gửi"]}, Normaliser(content.lexicon, content.emoji))
