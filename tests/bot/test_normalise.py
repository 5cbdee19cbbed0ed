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


def test_two_words_may_become_one_and_dialect_words_their_plain_form(content: Content) -> None:
    normaliser = Normaliser(content.lexicon, content.emoji)
    # "Hàn Quốc" folds to "han quoc": one word, not "hạn" (the validity) and a country.
    assert normaliser.words("con tôi ở Hàn Quốc") == ["con", "toi", "o", "hanquoc"]
    assert "han" in normaliser.words("hết hạn chưa")
    assert normaliser.words("tau muốn cài") == normaliser.words("tôi muốn cài")
    assert normaliser.words("miễn fí ko") == normaliser.words("miễn phí không")


def test_a_pair_needs_both_its_words() -> None:
    normaliser = Normaliser({"a b": "ab", "c": "d"})
    assert normaliser.words("a b c") == ["ab", "d"]
    assert normaliser.words("a c b") == ["a", "d", "b"]
    assert normaliser.words("x a") == ["x", "a"]
