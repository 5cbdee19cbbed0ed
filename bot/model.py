"""The engine's vocabulary: session state, input events, outgoing messages, analytics events.

Everything here is plain, immutable data with no channel types, so that any channel adapter
(Telegram, Zalo, terminal) and the store can translate to and from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, TypeAlias

from bot.vocabulary import EventKind, Variant

# --- the medium -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Medium:
    """The surface a conversation happens on, as far as the engine must know it to choose its
    words: how people answer, what the bot can do with their messages, how a link reaches
    them, whether the bot may write first. Built by the inbound path from the channel's
    capabilities (handlers/channel.py); the default is a chat with buttons (Telegram)."""

    #: The channel's name: finds the way in people share (config.toml ``[ways_in]``).
    channel: str = ""
    #: Options are buttons; else numbered lines people answer by typing ("go so 1").
    buttons: bool = True
    #: The bot can remove a user's message from the chat (a photo of an ID card...).
    can_delete: bool = True
    #: A link can carry a volunteer's code; else people type it ("ma VK7M2QX").
    deep_links: bool = True
    #: The bot can write first (reminders, announcements); a web page cannot.
    push: bool = True

    @property
    def variants(self) -> tuple[Variant, ...]:
        """The content variants that apply here, the first found wins: a surface that cannot
        write first is a page in a browser (the web chat)."""
        found: list[Variant] = []
        if not self.push:
            found.append(Variant.WEB)
        if not self.buttons:
            found.append(Variant.TYPED)
        return tuple(found)


#: A chat with buttons that can delete a message and carry a code in a link (Telegram's).
DEFAULT_MEDIUM = Medium()


# --- input events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The user opened the bot (/start), optionally through a referral link.

    ``area``: the commune the referral belongs to (the volunteer's), resolved by the host.
    """

    payload: str | None = None
    area: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """Free text the user typed (including commands such as "/menu")."""

    text: str


@dataclass(frozen=True, slots=True)
class Choice:
    """The user chose an option, e.g. pressed a button.

    ``screen`` is the screen the option was shown on; a mismatch with the current screen
    means the button is stale (or forged) and the engine says so instead of acting on it.
    """

    option: str
    screen: str


MediaKind: TypeAlias = Literal[
    "photo", "document", "video", "contact", "location", "sticker", "voice", "edited", "other"
]

#: Media that may carry personal data: deleted from the chat where the channel allows it.
SENSITIVE_MEDIA: frozenset[str] = frozenset({"photo", "document", "video", "contact", "location"})


@dataclass(frozen=True, slots=True)
class Media:
    """Something that is not text: a photo, a file, a sticker, an edited message...

    ``ref``: where the platform keeps a photo ("tg:" and Telegram's file id, or the address
    Zalo gives), and ``caption`` the words sent with it -- read only to pass a volunteer's
    picture on in a help chat (a citizen's photo is never passed on); neither is kept
    beyond the delivery's own inbox row."""

    kind: MediaKind
    ref: str = ""
    caption: str = ""


@dataclass(frozen=True, slots=True)
class VolunteerCode:
    """The user typed a volunteer's code ("ma VK7M2QX", or the code alone) where no link can
    carry it. ``area``: the volunteer's commune, resolved by the host -- None when no enrolled
    volunteer has this code (a typo: the code is not kept, the user is asked to check it)."""

    code: str
    area: str | None = None


@dataclass(frozen=True, slots=True)
class Timeout:
    """A scheduled nudge for a user who stopped mid-way (delivered by the host's scheduler)."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """The channel told us the user blocked the bot: stop sending them anything."""


@dataclass(frozen=True, slots=True)
class HelpNews:
    """Something happened to a help request that changes this user's conversation, told by
    the help desk (handlers/helpdesk.py) -- never typed by anyone.

    ``what``: "claimed" (a volunteer took the citizen's request), "closed" (it ended:
    ``detail`` is the outcome), "helping" / "released" (a volunteer now has a request
    whose chat they are in / no longer has any). ``detail``: the outcome, or who helps."""

    what: str
    detail: str = ""


Input: TypeAlias = Start | Text | Choice | Media | VolunteerCode | Timeout | Blocked | HelpNews


def input_to_json(event: Input) -> dict[str, Any]:
    """An input as plain JSON (to keep a delivery until its step is done)."""
    if isinstance(event, Start):
        return {"start": event.payload, "area": event.area}
    if isinstance(event, Text):
        return {"text": event.text}
    if isinstance(event, Choice):
        return {"choice": event.option, "screen": event.screen}
    if isinstance(event, Media):
        extra = {"ref": event.ref, "caption": event.caption} if event.ref else {}
        return {"media": event.kind, **extra}
    if isinstance(event, VolunteerCode):
        return {"code": event.code, "area": event.area}
    if isinstance(event, HelpNews):
        return {"news": event.what, "detail": event.detail}
    return {"timeout": True} if isinstance(event, Timeout) else {"blocked": True}


def input_from_json(data: Mapping[str, Any]) -> Input:
    """Inverse of :func:`input_to_json`."""
    if "start" in data:
        return Start(data["start"], data.get("area"))
    if "text" in data:
        return Text(str(data["text"]))
    if "choice" in data:
        return Choice(str(data["choice"]), str(data.get("screen", "")))
    if "media" in data:
        return Media(data["media"], str(data.get("ref", "")), str(data.get("caption", "")))
    if "code" in data:
        return VolunteerCode(str(data["code"]), data.get("area"))
    if "news" in data:
        return HelpNews(str(data["news"]), str(data.get("detail", "")))
    return Timeout() if data.get("timeout") else Blocked()


# --- output -----------------------------------------------------------------------------------

#: Option ids and screen keys travel in button data (Telegram allows 64 bytes in all).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")


@dataclass(frozen=True, slots=True)
class Option:
    """One answer the user can pick. Channels render it as a button or a numbered line."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message: a picture shown in the chat, or a document to download."""

    kind: Literal["photo", "document"]
    filename: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to send. ``screen`` identifies the screen its options belong to. With an
    ``attachment``, the file is sent and ``text`` is its caption. A message with a
    ``picture`` (an id of the content's ``images.toml``) has no text: each channel shows the
    picture as it can -- a photo, an image, or what it shows in words (its alt text).
    A message with a ``photo`` passes on a picture a volunteer sent in a help chat, by where
    their platform keeps it (:attr:`Media.ref`; ``text`` is its caption): nothing of the
    picture itself is ever held here (:func:`photo_reaches` says which channels can show
    it)."""

    text: str
    options: tuple[Option, ...] = ()
    screen: str = ""
    attachment: Attachment | None = None
    picture: str = ""
    photo: str = ""


#: A photo reference of Telegram's (its file id): only Telegram can send it again.
TELEGRAM_PHOTO = "tg:"


def photo_reaches(ref: str, channel: str) -> bool:
    """Whether a picture kept at ``ref`` can be shown on ``channel``: an address (Zalo's)
    anywhere that fetches pictures by address; Telegram's file id on Telegram only (its file
    addresses hold the bot's token: never handed to another platform)."""
    if ref.startswith(TELEGRAM_PHOTO):
        return channel == "telegram"
    return ref.startswith("https://") and channel in ("telegram", "zalo_bot", "zalo_oa")


@dataclass(frozen=True, slots=True)
class Event:
    """An analytics event: what happened, never what the user typed. ``step`` is the screen
    or install step it happened on."""

    kind: EventKind
    step: str | None = None
    detail: str | None = None
    data: Mapping[str, Any] | None = None


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScreenRef:
    """A place in the conversation: a screen or install step, a sub-view of an install step
    ("stuck", "why"), a page of a pick list."""

    screen: str
    view: str = ""
    page: int = 0

    @property
    def key(self) -> str:
        """The form button presses carry ("cccd_front.stuck", "report_village.p1"), so that a
        stale button can be told from a current one."""
        parts = [self.screen or "menu"]
        if self.view:
            parts.append(self.view)
        if self.page:
            parts.append(f"p{self.page}")
        return ".".join(parts)

    @classmethod
    def from_key(cls, key: str) -> ScreenRef:
        screen, *rest = key.split(".")
        view, page = "", 0
        for part in rest:
            if part.startswith("p") and part[1:].isdigit():
                page = int(part[1:])
            else:
                view = part
        return cls(screen, view, page)


@dataclass(frozen=True, slots=True)
class State:
    """One user's conversation state on one channel; serialisable to JSON.

    ``screen`` is where the user is: a screen id from the content or an install step id
    ("" for someone the bot has not greeted yet); ``view`` selects a sub-view of an install
    step ("stuck", "why"); ``page`` pages through long pick lists; ``back_to`` is where
    "continue" leads back to from a detour (help, FAQ, human help, resume). ``answers`` holds
    only choices made from our own lists (provider, commune, village...), never free text.
    """

    screen: str = ""
    view: str = ""
    page: int = 0
    back_to: ScreenRef | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
    referral: str | None = None
    stopped: bool = False
    last_at: datetime | None = None
    #: Whose options the user saw last (numbers and words typed refer to them): the key of a
    #: screen (:attr:`here`'s key when current), a question back or a "continue" button
    #: (the engine's own keys), "" for none; None for rows saved before it was kept (the
    #: current screen's then).
    shown: str | None = None
    #: The candidates of the question back ("Y ban la"), while it is the last one shown.
    asked: tuple[str, ...] = ()

    @property
    def here(self) -> ScreenRef:
        return ScreenRef(self.screen, self.view, self.page)

    def at(self, place: ScreenRef) -> State:
        """A copy at ``place``."""
        return replace(self, screen=place.screen, view=place.view, page=place.page)

    def with_answers(self, **changes: str | None) -> State:
        """A copy with answers set (or removed, when the value is None)."""
        answers = dict(self.answers)
        for key, value in changes.items():
            if value is None:
                answers.pop(key, None)
            else:
                answers[key] = value
        return replace(self, answers=answers)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-compatible form for the store."""
        return {
            "screen": self.screen,
            "view": self.view,
            "page": self.page,
            "back_to": self.back_to.key if self.back_to else None,
            "answers": dict(self.answers),
            "referral": self.referral,
            "stopped": self.stopped,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "shown": self.shown,
            "asked": list(self.asked),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> State:
        """Inverse of :meth:`to_json`; tolerant of missing keys, and of rows written before
        ``screen`` and ``back_to`` had these names ("step", "ret")."""
        last_at = data.get("last_at")
        back = data.get("back_to", data.get("ret"))
        return cls(
            screen=str(data.get("screen", data.get("step")) or ""),
            view=str(data.get("view") or ""),
            page=int(data.get("page") or 0),
            back_to=ScreenRef.from_key(str(back)) if back else None,
            answers={str(k): str(v) for k, v in (data.get("answers") or {}).items()},
            referral=data.get("referral"),
            stopped=bool(data.get("stopped", False)),
            last_at=datetime.fromisoformat(last_at) if last_at else None,
            shown=None if data.get("shown") is None else str(data["shown"]),
            asked=tuple(str(a) for a in data.get("asked") or ()),
        )


@dataclass(frozen=True, slots=True)
class HelpAsk:
    """What the engine hands to the help desk instead of deciding a step itself: this input
    is for a person ("relay": a message in a claimed request's chat, ``side`` "citizen" or
    "volunteer"), or asks to end the citizen's request ("cancel", "close" with the outcome
    they gave, "report"). The help desk does it -- the other side's conversation and
    messages included -- in one transaction; nothing of this step is written before."""

    what: str
    side: str = "citizen"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """What the engine decided: the new state, what to send, what to record.

    ``delete_input``: remove the user's message from the chat (it may hold personal data).
    ``erase``: the user confirmed "delete my data" -- the host deletes everything it holds
    for them, in the same transaction, instead of saving ``state``.
    ``persist``: False for replies that must not create or touch a session (a reminder for
    someone whose data was deleted meanwhile).
    ``help``: the input goes to the help desk instead (nothing else in the reply counts).
    ``private``: what a citizen typed for their help request (a landmark, a phone number):
    never in ``state`` or an event -- the host seals it into the request, in the same
    transaction.
    """

    state: State
    messages: tuple[OutMessage, ...] = ()
    events: tuple[Event, ...] = ()
    delete_input: bool = False
    erase: bool = False
    persist: bool = True
    help: HelpAsk | None = None
    private: Mapping[str, str] = field(default_factory=dict)
