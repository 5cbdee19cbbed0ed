"""The terminal chat, a channel like the others, on the real engine and store."""

from __future__ import annotations

from collections.abc import Iterator

from bot.model import Media, Start, Text
from handlers.conversation import Conversations
from handlers.inbound import Inbound
from handlers.terminal import TerminalChannel, to_input


def test_typed_lines_become_inputs() -> None:
    assert to_input("/photo") == Media("photo")
    assert to_input("/start vol_1") == Start("vol_1")
    assert to_input("/start") == Start(None)
    assert to_input("2") == Text("2")


async def run_chat(conversations: Conversations, lines: list[str]) -> list[str]:
    """What the terminal shows, one block per turn, for these typed lines."""
    feed: Iterator[str] = iter(lines)
    out: list[str] = []
    quit_asked: list[bool] = []

    async def read() -> str | None:
        return next(feed, None)

    channel = TerminalChannel(
        Inbound(conversations),
        read=read,
        write=out.append,
        on_quit=lambda: quit_asked.append(True),
    )
    await channel.run()
    assert quit_asked == [True], "the end of the chat asks the process to stop"
    return out


async def test_terminal_chat_walks_and_resumes(conversations: Conversations) -> None:
    out = await run_chat(conversations, ["2", "1", "1", "1", "2", "xong", "/quit"])
    assert "1. 💡 Chữ ký số có lợi gì?" in out[0]
    assert "Bước 2/9" in out[-1]
    # A second run (a restart) offers to continue where the user stopped.
    again = await run_chat(conversations, [])
    assert "Bước 2/9" in again[0]
    assert "1. ▶️ Tiếp tục" in again[0]


async def test_global_option_is_a_bullet_not_a_number(conversations: Conversations) -> None:
    out = await run_chat(conversations, ["thoi tiet hom nay the nao ha ban oi"])
    assert "• 🙋 Gặp cán bộ" in out[1]
    assert "1. 💡 Chữ ký số có lợi gì?" in out[1]


async def test_a_simulated_photo_gets_the_privacy_reply(conversations: Conversations) -> None:
    out = await run_chat(conversations, ["/photo"])
    assert "không cần ảnh" in out[1]
