"""Officials' and volunteers' commands, for any channel: /stats, /export, /chart, /moi_tnv,
/web (a one-time link to the web dashboard), /thongbao (an announcement to the opted-in
citizens of their scope: preview, confirm, then the outbox sends it, paced), /tiendo, /link,
/mystats, /dagiup, the help desk's /hotro (open help requests), /nhan (take one), /xong (end
it with its outcome) and /thon (a volunteer's village), and enrolment through one-time
invite links -- which also keeps the member's chat address, sealed, to tell them of help
requests.

Every command checks the sender's role and scope first. Anyone who is not an official (or,
for volunteer commands, a volunteer) is answered by the citizen conversation as if the
command did not exist -- they never see a figure. Every staff action is audited.

Figures cannot be inflated by repeating things (issue 12): a staff action is applied once
per delivery -- its delivery id is recorded with its audit row, in one transaction, so a
platform's redelivery is recognised (only staff actions' ids are recorded there, never a
citizen's); a confirmation button works once (its token is spent with the row it writes);
each member has a sliding-minute limit, a tighter one for the heavy commands (figures,
spreadsheets, charts); a volunteer's own link never counts for them; and more assisted
completions in an hour than a person can help with are flagged to officials.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import segno
from babel.numbers import format_decimal

from bot import officials, printing
from bot.charts import chart_png
from bot.config import Commune, Config
from bot.content import Content, load_staff_texts
from bot.exports import Dialect, Table, days_table, to_csv, to_xlsx, villages_table
from bot.identity import UserRefs
from bot.model import Attachment, Choice, Input, Option, OutMessage, Start, Text
from bot.officials import Refusal, Scope, deep_link
from bot.schedule import next_allowed
from bot.stats import Report, build_report, population, render
from handlers.limits import WINDOW, RateLimiter, Verdict
from storage.database import Database
from storage.outbox import OutboxStore
from storage.staff import INVITE_PREFIX, Staff, StaffRepository
from storage.stats import collect, export_rows
from storage.web import WebAccess

if TYPE_CHECKING:
    from handlers.helpdesk import HelpDesk

#: Button screen of staff buttons (kept apart from the citizen conversation's screens).
SCREEN = "st"
#: Staff actions per member in any minute (a person reads what each one answers), and of
#: those the heavy ones -- each reads a scope's figures or draws a chart (40 concurrent
#: /chart from one official drew 40 charts).
ACTIONS_PER_MINUTE = 12
HEAVY_PER_MINUTE = 3
HEAVY = frozenset({"stats", "export", "chart", "web", "hotro"})


@dataclass(frozen=True, slots=True)
class Draft:
    """An announcement kept as a draft: its id, the message citizens will read, how many
    will receive it, and the scope's name."""

    id: int
    message: str
    recipients: int
    scope: str


@dataclass(frozen=True, slots=True)
class StaffReply:
    messages: tuple[OutMessage, ...] = ()

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(m.attachment for m in self.messages if m.attachment is not None)


_Handler = Callable[[Staff, str], Awaitable[StaffReply]]


class StaffDesk:
    """Answers staff commands; returns None for anything that is not one of them."""

    def __init__(
        self,
        config: Config,
        content: Content,
        db: Database,
        staff: StaffRepository,
        refs: UserRefs,
        clock: Callable[[], datetime],
        *,
        public_url: str = "http://127.0.0.1:8080",
    ):
        self.config = config
        self.public_url = public_url
        self.content = content
        self.db = db
        self.staff = staff
        self.refs = refs
        self.clock = clock
        self.texts = load_staff_texts(config.locale)
        self._print_texts: printing.PrintTexts | None = None
        self.outbox = OutboxStore(db)
        self.web = WebAccess(db)
        #: The help desk (handlers/helpdesk.py), given by the composition root.
        self.helpdesk: HelpDesk | None = None
        self.limiter = RateLimiter(ACTIONS_PER_MINUTE)
        self.heavy = RateLimiter(HEAVY_PER_MINUTE)
        self._warned: dict[str, datetime] = {}
        # Commands (and the button flows they start) each role may use.
        self._handlers: dict[str, dict[str, _Handler]] = {
            "official": {
                "stats": self._official_stats,
                "export": self._official_export,
                "chart": self._official_chart,
                "moi_tnv": self._official_moi_tnv,
                "inv": self._official_inv,
                "thongbao": self._official_broadcast,
                "bc": self._official_broadcast_send,
                "bcx": self._official_broadcast_cancel,
                "tiendo": self._official_broadcast_progress,
                "web": self._official_web,
                **self._help_handlers(),
            },
            "volunteer": {
                "link": self._volunteer_link,
                "mystats": self._volunteer_mystats,
                "dagiup": self._volunteer_dagiup,
                "as": self._volunteer_as,
                "thon": self._help_village,
                "hv": self._help_village,
                **self._help_handlers(),
            },
        }

    async def handle(
        self,
        channel: str,
        user_id: str | int,
        event: Input,
        *,
        files: bool = True,
        delivery_id: str | None = None,
        chat: str | None = None,
    ) -> StaffReply | None:
        """The reply to a staff command or an invite, or None for anything else (or anyone
        else). ``files``: the channel can send files; where it cannot, a file is replaced by
        a note saying where to get it. ``delivery_id``: the platform's id of the delivery
        (a redelivery is not applied again); ``chat``: where the member is written to
        (kept sealed, for telling them of help requests)."""
        reply = await self._handle(channel, user_id, event, delivery_id, chat)
        if reply is None or files or not reply.attachments:
            return reply
        elsewhere = OutMessage(self.texts["files_elsewhere"])
        kept = tuple(m for m in reply.messages if m.attachment is None)
        return StaffReply((*kept, elsewhere))

    async def _handle(
        self,
        channel: str,
        user_id: str | int,
        event: Input,
        delivery_id: str | None,
        chat: str | None,
    ) -> StaffReply | None:
        ref = self.refs.ref(channel, user_id)
        address = self.refs.seal(channel, ref, chat if chat is not None else user_id)
        if isinstance(event, Start) and event.payload and event.payload.startswith(INVITE_PREFIX):
            return await self._enrol(channel, ref, event.payload, address)
        command, argument = _command(event)
        if command is None:
            return None
        member = await self.staff.get(channel, ref)
        if member is None:
            return None
        handler = self._handlers[member.role].get(command)
        if handler is None:
            return None
        verdict = self._admit(ref, command)
        if verdict is Verdict.WARN:
            return self._say(self.texts["staff_slow_down"])
        if verdict is Verdict.DROP:
            return StaffReply()
        delivery = self.refs.delivery(channel, delivery_id) if delivery_id is not None else None
        now = self.clock()
        if not await self.staff.begin(
            channel, ref, command, argument or None, now, delivery=delivery
        ):
            return StaffReply()  # this delivery was applied before
        if member.address is None:  # enrolled before chat addresses were kept
            await self.staff.set_address(channel, ref, address)
        return await handler(member, argument)

    def _admit(self, ref: str, command: str) -> Verdict:
        """The member's rate limits: one "slow down" a minute at most, then silence."""
        now = self.clock()
        verdict = self.limiter.check(ref, now)
        if verdict is Verdict.OK and command in HEAVY:
            verdict = self.heavy.check(ref, now)
        if verdict is Verdict.WARN:
            warned = self._warned.get(ref)
            if warned is not None and now - warned < WINDOW:
                return Verdict.DROP
            self._warned[ref] = now
            if len(self._warned) > 10_000:
                self._warned = {k: t for k, t in self._warned.items() if now - t < WINDOW}
        return verdict

    # --- enrolment ------------------------------------------------------------------------

    async def _enrol(self, channel: str, ref: str, code: str, address: str) -> StaffReply:
        member = await self.staff.redeem(channel, ref, code, self.clock(), address=address)
        if member is None:
            return self._say(self.texts["invite_invalid"])
        key = "enrolled_official" if member.role == "official" else "enrolled_volunteer"
        welcome = self.texts[key].format(scope=self.scope_name(member.scope))
        return self._say(welcome + "\n" + self.texts["enrolled_address"])

    # --- help requests (handlers/helpdesk.py does the work) -------------------------------

    def _help_handlers(self) -> dict[str, _Handler]:
        return {
            "hotro": self._help_list,
            "nhan": self._help_claim,
            "hn": self._help_claim,
            "xong": self._help_close,
            "hx": self._help_close,
        }

    async def _help_list(self, member: Staff, _argument: str) -> StaffReply:
        if self.helpdesk is None:
            return StaffReply()
        return StaffReply(
            await self.helpdesk.listing(member.channel, member.user_ref, member.scope)
        )

    async def _help_claim(self, member: Staff, argument: str) -> StaffReply:
        if self.helpdesk is None:
            return StaffReply()
        found = await self.helpdesk.claim(member.channel, member.user_ref, member.scope, argument)
        return StaffReply(found)

    async def _help_close(self, member: Staff, argument: str) -> StaffReply:
        if self.helpdesk is None:
            return StaffReply()
        return StaffReply(await self.helpdesk.close(member.channel, member.user_ref, argument))

    async def _help_village(self, member: Staff, argument: str) -> StaffReply:
        if self.helpdesk is None or not member.scope.codes:
            return StaffReply()
        commune = member.scope.codes[0]
        found = await self.helpdesk.set_village(member.channel, member.user_ref, commune, argument)
        return StaffReply(found)

    # --- officials ------------------------------------------------------------------------

    async def _official_stats(self, member: Staff, _argument: str) -> StaffReply:
        report = await self.report(member.scope)
        text = render(report, self.config, self.content, self.texts)
        if self.helpdesk is not None:
            text += "\n\n" + await self.helpdesk.stats(member.scope)
        return self._say(text)

    async def _official_export(self, member: Staff, _argument: str) -> StaffReply:
        data = await self.export_xlsx(member.scope)
        caption = self.texts["export_caption"].format(scope=self.scope_name(member.scope))
        name = f"chu-ky-so-{self._today().isoformat()}.xlsx"
        return StaffReply((OutMessage(caption, attachment=Attachment("document", name, data)),))

    async def _official_chart(self, member: Staff, _argument: str) -> StaffReply:
        report = await self.report(member.scope)
        caption = self.texts["chart_caption"].format(
            scope=report.scope, date=self._today().strftime("%d/%m/%Y")
        )  # the locale's date format is dd/MM/yyyy
        # In a thread, as posters are: rendering the PNG takes 0.1-0.8 s of a core, and on the
        # event loop every citizen's reply in this process waited for it.
        png = await asyncio.to_thread(chart_png, report, self.texts, self.content.locale)
        return StaffReply(
            (OutMessage(caption, attachment=Attachment("photo", "bieu-do.png", png)),)
        )

    async def _official_moi_tnv(self, member: Staff, _argument: str) -> StaffReply:
        communes = self.communes(member.scope)
        if len(communes) == 1:
            return await self._official_inv(member, communes[0].code)
        options = tuple(Option(f"inv:{c.code}", c.name) for c in communes)
        return StaffReply((OutMessage(self.texts["choose_commune"], options, SCREEN),))

    async def _official_inv(self, member: Staff, commune: str) -> StaffReply:
        if commune not in {c.code for c in self.communes(member.scope)}:
            return StaffReply()
        code = await self.staff.create_invite(
            "volunteer", Scope("communes", (commune,)), created_by="official", now=self.clock()
        )
        link = deep_link(self.config.bot_username, code)
        return self._say(self.texts["volunteer_invite"].format(link=link))

    async def _official_broadcast(self, member: Staff, text: str) -> StaffReply:
        """/thongbao TEXT: a preview of the announcement, and how many it would reach."""
        draft = await self.prepare_announcement(member, text)
        if isinstance(draft, Refusal):
            return self._say(draft.text(self.texts))
        options = (
            Option(f"bc:{draft.id}", self.texts["label_send"]),
            Option(f"bcx:{draft.id}", self.texts["label_cancel"]),
        )
        ask = self.texts["broadcast_preview"].format(
            count=self._n(draft.recipients), scope=draft.scope
        )
        return StaffReply((OutMessage(draft.message), OutMessage(ask, options, SCREEN)))

    async def _official_broadcast_send(self, member: Staff, argument: str) -> StaffReply:
        if not argument.isdigit():
            return StaffReply()
        count = await self.send_announcement(member, int(argument))
        if isinstance(count, Refusal):
            return self._say(count.text(self.texts))
        if count is None:  # the preview's buttons are spent: say how it ended
            return await self._broadcast_spent(member, int(argument))
        return self._say(self.texts["broadcast_queued"].format(count=self._n(count)))

    async def _official_broadcast_cancel(self, member: Staff, argument: str) -> StaffReply:
        """Cancel: the draft is marked cancelled, so its Send button can never queue it."""
        if not argument.isdigit():
            return StaffReply()
        if not await self.outbox.cancel_broadcast(int(argument), member.user_ref):
            return await self._broadcast_spent(member, int(argument))
        return self._say(self.texts["broadcast_cancelled"])

    async def _broadcast_spent(self, member: Staff, broadcast_id: int) -> StaffReply:
        """A button of a preview that was sent or cancelled already (or not this official's:
        nothing)."""
        status = await self.outbox.broadcast_status(broadcast_id, member.user_ref)
        if status == "queued":
            return self._say(self.texts["broadcast_was_sent"])
        if status == "cancelled":
            return self._say(self.texts["broadcast_was_cancelled"])
        return StaffReply()

    async def _official_broadcast_progress(self, member: Staff, _argument: str) -> StaffReply:
        last = await self.announcement_progress(member)
        if last is None:
            return self._say(self.texts["broadcast_none"])
        return self._say(
            self.texts["broadcast_progress"].format(
                total=self._n(last.total),
                sent=self._n(last.sent),
                waiting=self._n(last.waiting),
                failed=self._n(last.failed),
            )
        )

    async def _official_web(self, member: Staff, _argument: str) -> StaffReply:
        """/web: a one-time link to the web dashboard, for this official and their scope."""
        token = await self.web.create_link(
            member.scope, channel=member.channel, user_ref=member.user_ref, now=self.clock()
        )
        link = officials.web_login_url(self.public_url, token)
        minutes = int(officials.WEB_LINK_TTL.total_seconds() // 60)
        return self._say(self.texts["web_link"].format(link=link, minutes=minutes))

    # --- announcements (also used by the web dashboard) -----------------------------------

    async def prepare_announcement(self, member: Staff, text: str) -> Draft | Refusal:
        """Check an announcement against the rules (bot/officials.py) and keep it as a
        draft: what citizens will read, and how many of them."""
        refused = officials.check_announcement(text, self.config)
        if refused is not None:
            return refused
        scope = self.scope_name(member.scope)
        count = await self.outbox.recipients(
            officials.announcement_communes(self.config, member.scope)
        )
        refused = officials.check_audience(count, scope) or officials.check_daily_limit(
            await self._broadcasts_today(member)
        )
        if refused is not None:
            return refused
        message = officials.announcement_message(self.texts, scope, text)
        draft = await self.outbox.draft_broadcast(
            scope=member.scope.to_json(),
            text=message,
            created_by=member.user_ref,
            now=self.clock(),
        )
        return Draft(draft, message, count, scope)

    async def send_announcement(self, member: Staff, draft: int) -> int | Refusal | None:
        """Queue a draft for sending (paced, never at night): how many it goes to, or None
        when it was queued already or is not this official's."""
        refused = officials.check_daily_limit(await self._broadcasts_today(member))
        if refused is not None:
            return refused
        now = self.clock()
        r = self.config.reminders
        return await self.outbox.queue_broadcast(
            draft,
            member.user_ref,
            officials.announcement_communes(self.config, member.scope),
            next_allowed(now, self.config.timezone, r.quiet_from, r.quiet_until),
        )

    async def announcement_progress(self, member: Staff) -> officials.Progress | None:
        """How far the official's latest announcement has got (None: they sent none)."""
        last = await self.outbox.last_broadcast(member.user_ref)
        if last is None:
            return None
        broadcast_id, total = last
        return officials.progress(total, await self.outbox.progress(broadcast_id))

    async def _broadcasts_today(self, member: Staff) -> int:
        return await self.outbox.broadcasts_since(
            member.user_ref, self.clock() - timedelta(days=1)
        )

    # --- volunteers -----------------------------------------------------------------------

    async def _volunteer_link(self, member: Staff, _argument: str) -> StaffReply:
        code = member.code or ""
        # The web chat where the deployment has a public address (it opens in Zalo's own
        # browser: a citizen with only Zalo scans and is in), else the Telegram bot.
        if self.config.chat_url:
            link = printing.volunteer_link(self.config, code)
        else:
            link = deep_link(self.config.bot_username, code)
        qr = io.BytesIO()
        segno.make(link, error="m").save(qr, kind="png", scale=10, border=4)
        poster = await self._volunteer_poster(member, link, code)
        return StaffReply(
            (
                OutMessage(self._volunteer_link_text(link, code)),
                OutMessage(
                    self.texts["qr_caption"],
                    attachment=Attachment("photo", f"qr-{code}.png", qr.getvalue()),
                ),
                *poster,
            )
        )

    def _volunteer_link_text(self, link: str, code: str) -> str:
        """The link, the code, and what citizens type where no link carries it (Zalo), with
        the ways in the config names for the other channels."""
        zalo = "volunteer_web" if self.config.chat_url else "volunteer_zalo"
        parts = [
            self.texts["volunteer_link"].format(link=link, code=code),
            self.texts[zalo].format(code=code),
        ]
        ways = [way for channel, way in self.config.ways_in.items() if channel != "telegram"]
        if ways:
            parts.append(self.texts["volunteer_ways"] + "".join(f"\n• {way}" for way in ways))
        return "\n\n".join(parts)

    async def _volunteer_poster(
        self, member: Staff, link: str, code: str
    ) -> tuple[OutMessage, ...]:
        """The A4 poster whose QR code is this volunteer's link (to print for the village
        board), if their commune is served here."""
        commune = self.config.commune(member.scope.codes[0]) if member.scope.codes else None
        if commune is None:
            return ()
        if self._print_texts is None:
            self._print_texts = printing.load_print_texts(self.content)
        texts = self._print_texts
        # About half a second (the fonts): off the event loop.
        pdf = await asyncio.to_thread(
            printing.poster_pdf, self.content, texts, self.config, commune, link, code
        )
        attachment = Attachment("document", f"poster-{code}.pdf", pdf)
        return (OutMessage(self.texts["poster_caption"], attachment=attachment),)

    async def _volunteer_mystats(self, member: Staff, _argument: str) -> StaffReply:
        code = member.code or ""
        raw = await collect(self.db, list(member.scope.codes), self.config.timezone)
        f = self._n
        return self._say(
            self.texts["mystats"].format(
                code=code,
                started=f(raw.started_via.get(code, 0)),
                finished=f(raw.finished_via.get(code, 0)),
                helped=f(raw.helped_by.get(code, 0)),
            )
        )

    async def _volunteer_dagiup(self, member: Staff, _argument: str) -> StaffReply:
        """/dagiup: the village, then the provider; the provider's button records it. The
        buttons carry a token given to this member for this one record: pressed again (or
        made up) they count nothing."""
        commune = self.config.commune(member.scope.codes[0]) if member.scope.codes else None
        if commune is None:
            return StaffReply()
        token = await self.staff.issue_button(
            member.channel, member.user_ref, "assisted", self.clock()
        )
        options = [Option(f"as:{token}:{v.id}", v.name) for v in commune.villages]
        options.append(Option(f"as:{token}:unknown", self.content.labels["unknown"]))
        return StaffReply((OutMessage(self.texts["assist_village"], tuple(options), SCREEN),))

    async def _volunteer_as(self, member: Staff, argument: str) -> StaffReply:
        commune = self.config.commune(member.scope.codes[0]) if member.scope.codes else None
        token, _, rest = argument.partition(":")
        village, _, provider = rest.partition(":")
        if commune is None or (village != "unknown" and commune.village(village) is None):
            return StaffReply()
        if not provider:
            options = [
                Option(f"as:{token}:{village}:{p.id}", p.name) for p in self.config.providers
            ]
            options.append(Option(f"as:{token}:{village}:unknown", self.content.labels["unknown"]))
            return StaffReply((OutMessage(self.texts["assist_provider"], tuple(options), SCREEN),))
        if provider != "unknown" and self.config.provider(provider) is None:
            return StaffReply()
        recorded = await self.staff.record_assisted(
            member.code or "",
            commune.code,
            village,
            provider,
            self.clock(),
            button=(member.channel, member.user_ref, token),
        )
        if not recorded:
            return self._say(self.texts["assist_spent"])
        found = commune.village(village)
        name = found.name if found else self.content.labels["unknown"]
        return self._say(self.texts["assist_done"].format(village=name))

    # --- figures (also used by the command line) ------------------------------------------

    def communes(self, scope: Scope) -> tuple[Commune, ...]:
        """The deployment's communes within ``scope``."""
        return officials.communes_in(self.config, scope)

    def scope_name(self, scope: Scope) -> str:
        return officials.scope_name(self.config, self.texts, scope)

    async def report(self, scope: Scope, parts: frozenset[str] | None = None) -> Report:
        """The figures of ``scope`` (``parts``: only some of them, storage/stats.py)."""
        communes = self.communes(scope)
        codes = [c.code for c in communes]
        everyone = scope.kind == "all"
        since = self.clock() - timedelta(days=officials.BURST_DAYS) if parts is None else None
        tz = self.config.timezone
        raw = await collect(self.db, codes, tz, everyone=everyone, parts=parts, bursts_since=since)
        return build_report(
            raw,
            scope_name=self.scope_name(scope),
            communes=communes,
            figures=population(communes, await self.staff.population(codes)),
            content=self.content,
            today=self._today(),
            volunteers=await self.staff.volunteers(codes),
            provider_routes={p.id: p.kind for p in self.config.providers},
        )

    async def export_tables(self, scope: Scope, report: Report | None = None) -> list[Table]:
        """The spreadsheets of ``scope``: coverage by village, completions by day."""
        communes = {c.code: c for c in self.communes(scope)}
        rows = await export_rows(self.db, list(communes), self.config.timezone)
        unknown = self.content.labels["unknown"]
        return [
            villages_table(report or await self.report(scope), self.config, self.texts),
            days_table(rows, communes, self.config, self.texts, unknown),
        ]

    async def export_csv(
        self, scope: Scope, table: str = "villages", dialect: Dialect = "excel"
    ) -> bytes:
        """One table (``villages`` or ``days``) of ``scope`` as CSV in ``dialect``."""
        villages, days = await self.export_tables(scope)
        return to_csv(villages if table == "villages" else days, dialect)

    async def export_xlsx(self, scope: Scope) -> bytes:
        """Both tables of ``scope`` as an Excel workbook."""
        return to_xlsx(await self.export_tables(scope))

    def _today(self) -> date:
        return self.clock().astimezone(self.config.timezone).date()

    def _n(self, value: int) -> str:
        return format_decimal(value, locale=self.content.locale)

    @staticmethod
    def _say(text: str) -> StaffReply:
        return StaffReply((OutMessage(text),))


def _command(event: Input) -> tuple[str | None, str]:
    """(command, argument) of a staff command or staff button, else (None, "")."""
    if isinstance(event, Text) and event.text.startswith("/"):
        head, _, rest = event.text[1:].partition(" ")
        return head.split("@")[0].lower(), rest.strip()
    if isinstance(event, Choice) and event.screen == SCREEN:
        action, _, argument = event.option.partition(":")
        return action, argument
    return None, ""
