"""Messages kept for later (the outbox, replies kept with their step) come back as they were."""

from __future__ import annotations

from bot.model import Option, OutMessage
from storage.outbox import dump_messages, load_messages


def test_messages_round_trip_with_their_options_and_picture() -> None:
    messages = (
        OutMessage("Bước 3/9", (Option("done", "✅ Xong"),), "cccd_front", picture="cccd_photo"),
        OutMessage("Chào bạn"),
    )
    assert load_messages(dump_messages(messages)) == messages
    assert "picture" not in dump_messages(messages[1:]), "nothing stored for a plain message"
