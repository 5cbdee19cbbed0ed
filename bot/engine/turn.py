"""The reply being built for one input: the state as it changes, messages, events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.model import Event, HelpAsk, Medium, Option, OutMessage, Reply, State
from bot.vocabulary import EventKind


@dataclass
class Turn:
    """One input's turn: what the engine decides is collected here, then frozen into a
    :class:`~bot.model.Reply`."""

    state: State
    now: datetime
    #: The surface spoken on: buttons or typed numbers, what the bot can delete...
    medium: Medium
    #: The content's texts as worded for that medium (Content.texts_for).
    texts: Mapping[str, str]
    #: The user comes back after a long absence (a detour then offers to resume).
    idle: bool = False
    messages: list[OutMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    delete_input: bool = False
    erase: bool = False
    #: The input goes to the help desk instead (bot.model.HelpAsk).
    help: HelpAsk | None = None
    #: Typed for a help request: sealed into it by the host, never kept in the state.
    private: dict[str, str] = field(default_factory=dict)

    def say(self, text: str, options: tuple[Option, ...] = (), screen: str = "") -> None:
        self.messages.append(OutMessage(text=text, options=options, screen=screen))

    def show(self, picture: str) -> None:
        """A picture of the content, as a message of its own (sent, and retried, alone)."""
        self.messages.append(OutMessage(text="", picture=picture))

    def record(
        self,
        kind: EventKind,
        step: str | None = None,
        detail: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        self.events.append(Event(kind=kind, step=step, detail=detail, data=data))

    def reply(self) -> Reply:
        return Reply(
            state=self.state,
            messages=tuple(self.messages),
            events=tuple(self.events),
            delete_input=self.delete_input,
            erase=self.erase,
            help=self.help,
            private=dict(self.private),
        )
