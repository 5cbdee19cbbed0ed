"""One spelling for many: diacritics, teencode, regional words, stretched letters, emoji."""

from __future__ import annotations

from bot.content import Content
from bot.normalise import SEEN_TEXTS, Normaliser


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


def test_a_key_of_several_words_the_longest_first() -> None:
    normaliser = Normaliser({"a b c": "abc", "a b": "ab"})
    assert normaliser.words("x a b c y") == ["x", "abc", "y"]
    assert normaliser.words("a b x") == ["ab", "x"]
    assert normaliser.words("a x b c") == ["a", "x", "b", "c"]


def test_voice_typing_spells_names_in_vietnamese_syllables(content: Content) -> None:
    normaliser = Normaliser(content.lexicon, content.emoji, content.units)
    assert normaliser.words("mở vê nê ai đi") == normaliser.words("mở vneid")
    assert normaliser.words("căn cướp") == normaliser.words("căn cước")


def test_a_unit_run_into_its_number(content: Content) -> None:
    normaliser = Normaliser(content.lexicon, content.emoji, content.units)
    assert normaliser.words("con 15t") == normaliser.words("con 15 tuổi")
    assert normaliser.words("mất 10p") == normaliser.words("mất 10 phút")
    assert normaliser.words("cccd") == ["can", "cuoc"]  # letters alone are no unit
    assert Normaliser({}).words("15t") == ["15t"]  # no units known: left as typed


def test_a_word_with_diacritics_matches_only_as_typed_with_them() -> None:
    normaliser = Normaliser({"nỏ": "khong", "ko": "khong"})
    assert normaliser.words("nỏ được") == ["khong", "duoc"]
    assert normaliser.words("nó được") == ["no", "duoc"]  # "it": the same letters folded
    assert normaliser.words("no duoc") == ["no", "duoc"]  # typed without: not known
    assert normaliser.words("ko được") == ["khong", "duoc"]


def test_words_kept_from_an_earlier_call_are_the_same_and_a_new_list(content: Content) -> None:
    normaliser = Normaliser(content.lexicon, content.emoji)
    texts = [f"Tôi ở thôn {n}, cài chữ ký số ko dc" for n in range(SEEN_TEXTS + 10)]
    first = [normaliser.words(t) for t in texts]
    fresh = Normaliser(content.lexicon, content.emoji)
    assert [normaliser.words(t) for t in texts] == [fresh.words(t) for t in texts] == first
    words = normaliser.words(texts[-1])
    words.append("changed")
    assert normaliser.words(texts[-1]) == first[-1], "a caller's change is its own"
