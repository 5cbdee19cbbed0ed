"""One spelling for many: diacritics, teencode, regional words, stretched letters, emoji."""

from __future__ import annotations

from bot.content import Content
from bot.normalise import Normaliser


def test_the_ways_people_type_fold_to_one(content: Content) -> None:
    normaliser = Normaliser(content.lexicon, content.emoji)
    assert normaliser.words("Chữ ký số là gì?") == normaliser.words("chu ky so la gi")
    assert normaliser.words("cks la j") == normaliser.words("chữ ký số là gì")
    assert normaliser.words("ko dc") == normaliser.words("không được")
    assert normaliser.text("okkkk") == normaliser.text("ok")
    assert normaliser.text("cccd") == "can cuoc"  # a real word, not a stretched one
    assert normaliser.text("👍🏻") == normaliser.text("👍") == normaliser.text("ok")
    assert normaliser.text("🙏") == normaliser.text("cảm ơn")
    assert normaliser.text("?!") == ""
