"""The dashboard's routes on the bot's aiohttp server: sign-in, pages, forms, downloads.

Every page request goes through :meth:`Dashboard._viewer`: a live session (HttpOnly,
SameSite=Strict cookie; Secure when PUBLIC_URL is https), the owner still an official
(looked up again: an official removed from the staff list is out at the next click), and a
commune asked for (``?commune=CODE``) inside their scope -- else 403. Every form carries a
CSRF token derived from the session id; every sign-in, page, download and announcement is
written to the audit log. Responses forbid caching, framing and any script or style from
elsewhere (Content-Security-Policy).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from bot import officials, printing
from bot.charts import coverage_svg, progress_svg
from bot.config import Config
from bot.content import Content
from bot.exports import Dialect
from bot.officials import DASHBOARD_PATH, LOGIN_PATH, Refusal, Scope
from bot.stats import Formatter, Report, pace_text, stage_titles
from dashboard import pages
from dashboard.texts import load_dashboard_texts
from handlers import helpdesk
from handlers.channel import Route
from handlers.staff import StaffDesk
from storage.staff import Staff
from storage.stats import AREA_PARTS, PROGRESS_PARTS
from storage.web import SESSION_TTL, WebAccess, WebSession

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "cks_session"
#: The owner of sessions opened with a link the server's operator printed.
OPERATOR = "cli"
#: Static files served (nothing else under static/ is reachable).
STATIC = ("dashboard.css", "print.js")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

View = Callable[[web.Request, "Viewer"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking, and what they see: the official, their scope, the page's scope."""

    session_id: str
    session: WebSession
    member: Staff
    scope: Scope
    commune: str | None
    csrf: str

    @property
    def official(self) -> Staff:
        """The official acting within the page's scope (announcements go to it)."""
        return Staff("official", self.scope, None, self.member.user_ref)


def csrf_token(session_id: str) -> str:
    """The token every form of a session carries: derived from the session id (which only
    the browser and, hashed, the store hold), so it needs no storage of its own."""
    return hmac.new(session_id.encode(), b"dashboard-csrf", hashlib.sha256).hexdigest()


class Dashboard:
    """The web dashboard of one deployment."""

    def __init__(
        self,
        *,
        config: Config,
        content: Content,
        desk: StaffDesk,
        public_url: str,
        clock: Callable[[], datetime],
    ):
        self.config = config
        self.content = content
        self.desk = desk
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.secure = self.public_url.startswith("https://")
        self.texts = load_dashboard_texts(config.locale)
        # fpdf2's font subsetting logs every table it prunes, at INFO, for every PDF.
        logging.getLogger("fontTools").setLevel(logging.WARNING)
        self.access = WebAccess(desk.db)
        self.print_texts = printing.load_print_texts(content)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # --- mounting ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        p = DASHBOARD_PATH
        guarded: list[tuple[str, str, str, View]] = [
            ("GET", p, "web_overview", self._overview),
            ("GET", p + "/villages", "web_villages", self._villages),
            ("GET", p + "/funnel", "web_funnel", self._funnel),
            ("GET", p + "/volunteers", "web_volunteers", self._volunteers),
            ("GET", p + "/announcements", "web_announcements", self._announcements),
            ("POST", p + "/announcements", "web_announce_preview", self._announce_preview),
            ("POST", p + "/announcements/send", "web_announce_send", self._announce_send),
            ("GET", p + "/downloads", "web_downloads", self._downloads),
            ("GET", p + "/download/{name}", "web_download", self._download),
            ("GET", p + "/report", "web_report", self._report),
            ("POST", p + "/logout", "web_logout", self._logout),
        ]
        return [
            Route("GET", LOGIN_PATH, self._login_page),
            Route("POST", LOGIN_PATH, self._login),
            Route("GET", p + "/signin", self._signin),
            Route("GET", p + "/static/{name}", self._static),
            *(
                Route(method, path, self._guard(action, view))
                for method, path, action, view in guarded
            ),
        ]

    # --- sign-in ----------------------------------------------------------------------------

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        """The link from the bot: a button that signs in (a link preview or a prefetch
        that only GETs the page does not use the link up)."""
        token = request.query.get("t", "")
        if not token:
            raise web.HTTPSeeOther(DASHBOARD_PATH + "/signin")
        return self._page("login.html", {"token": token, "title": self.texts["login_title"]})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = str(form.get("t", ""))
        now = self.clock()
        opened = await self.access.redeem(token, now) if token else None
        if opened is None:
            await self.desk.staff.audit("web", "?", "web_login_failed", None, now)
            return self._message("refused_title", "refused_text", status=403)
        session_id, session = opened
        await self.desk.staff.audit(
            session.channel, session.user_ref, "web_login", session.scope.to_json(), now
        )
        response = web.Response(status=303, headers={**HEADERS, "Location": DASHBOARD_PATH})
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(SESSION_TTL.total_seconds()),
            path=DASHBOARD_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.secure,
        )
        return response

    async def _signin(self, _request: web.Request) -> web.StreamResponse:
        return self._message("ask_title", "ask_text")

    async def _logout(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        await self.access.end(viewer.session_id, self.clock())
        response = self._message("ask_title", "logged_out")
        response.del_cookie(COOKIE, path=DASHBOARD_PATH)
        return response

    # --- every page's checks ------------------------------------------------------------------

    def _guard(self, action: str, view: View) -> Callable[[web.Request], Awaitable[Any]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if isinstance(viewer, web.StreamResponse):
                return viewer
            if request.method == "POST":
                form = await request.post()
                if not hmac.compare_digest(str(form.get("csrf", "")), viewer.csrf):
                    await self.desk.staff.audit(
                        viewer.session.channel,
                        viewer.member.user_ref,
                        "web_csrf_refused",
                        request.path,
                        self.clock(),
                    )
                    return self._message("forbidden_title", "expired_form", status=403)
            detail = request.path_qs[:200]
            await self.desk.staff.audit(
                viewer.session.channel, viewer.member.user_ref, action, detail, self.clock()
            )
            return await view(request, viewer)

        return handler

    async def _viewer(self, request: web.Request) -> Viewer | web.StreamResponse:
        """The checked viewer, or the response that refuses them."""
        session_id = request.cookies.get(COOKIE, "")
        session = await self.access.session(session_id, self.clock()) if session_id else None
        if session is None:
            raise web.HTTPSeeOther(DASHBOARD_PATH + "/signin")
        if session.channel == OPERATOR:
            member = Staff("official", session.scope, None, OPERATOR)
        else:
            found = await self.desk.staff.get(session.channel, session.user_ref)
            if found is None or found.role != "official":
                await self.access.end(session_id, self.clock())
                raise web.HTTPSeeOther(DASHBOARD_PATH + "/signin")
            member = found
        commune = request.query.get("commune") or None
        scope = member.scope
        if commune is not None:
            if not officials.covers(self.config, member.scope, commune):
                await self.desk.staff.audit(
                    session.channel,
                    member.user_ref,
                    "web_forbidden",
                    request.path_qs[:200],
                    self.clock(),
                )
                return self._message("forbidden_title", "forbidden_text", status=403)
            scope = Scope("communes", (commune,))
        return Viewer(session_id, session, member, scope, commune, csrf_token(session_id))

    # --- pages --------------------------------------------------------------------------------

    def _formatter(self) -> Formatter:
        return Formatter(self.content.locale, self.desk.texts)

    def _common(self, viewer: Viewer, page: str, report: Report | None = None) -> dict[str, Any]:
        """What every signed-in page needs: scope, navigation, the scope chooser."""
        now = self.clock().astimezone(self.config.timezone)
        f = self._formatter()
        communes = officials.communes_in(self.config, viewer.member.scope)
        query = f"?commune={viewer.commune}" if viewer.commune else ""
        return {
            "page": page,
            "query": query,
            "viewer": viewer,
            "scope_name": report.scope if report else self.desk.scope_name(viewer.scope),
            "communes": communes if len(communes) > 1 else (),
            "data_date": self.texts["data_date"].format(
                date=f.day(now.date()), time=now.strftime("%H:%M")
            ),
        }

    async def _overview(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        report = await self.desk.report(viewer.scope, PROGRESS_PARTS)
        f = self._formatter()
        wide, _ = pages.areas(report)
        return self._page(
            "overview.html",
            {
                **self._common(viewer, "overview", report),
                "title": self.texts["overview_title"].format(scope=report.scope),
                "figures": pages.headline(report, f, self.texts),
                "sources": self.texts["sources"].format(
                    self=f.n(report.completed_self), assisted=f.n(report.completed_assisted)
                ),
                "pace_text": _pace(report, f),
                "progress_chart": Markup(progress_svg(report, self.desk.texts, f.locale)),
                "coverage_chart": Markup(coverage_svg(report, self.desk.texts, f.locale)),
                "lowest": pages.rows(report, self.config, f)[: pages.LOWEST],
                "wide": wide,
            },
        )

    async def _villages(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        report = await self.desk.report(viewer.scope, AREA_PARTS)
        sort = request.query.get("sort", "coverage")
        sort = sort if sort in pages.SORTS else "coverage"
        descending = request.query.get("order") == "desc"
        wide, _ = pages.areas(report)
        key = "communes_title" if wide else "villages_title"
        return self._page(
            "villages.html",
            {
                **self._common(viewer, "villages", report),
                "title": self.texts[key].format(scope=report.scope),
                "rows": pages.rows(report, self.config, self._formatter(), sort, descending),
                "sort": sort,
                "descending": descending,
                "wide": wide,
            },
        )

    async def _funnel(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        report = await self.desk.report(viewer.scope)
        f = self._formatter()
        worst = report.worst_step
        titles = stage_titles(self.content, self.desk.texts)
        return self._page(
            "funnel.html",
            {
                **self._common(viewer, "funnel", report),
                "title": self.texts["funnel_title"].format(scope=report.scope),
                "chains": pages.funnel(report, self.content, f),
                "worst": self.texts["worst"].format(step=titles[worst[0]], count=f.n(worst[1]))
                if worst
                else self.texts["no_worst"],
            },
        )

    async def _volunteers(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        report = await self.desk.report(viewer.scope)
        helped = await helpdesk.figures(self.desk.db, self.config, viewer.scope)
        f = self._formatter()
        titles = stage_titles(self.content, self.desk.texts)
        presses = [
            (titles.get(step, step) if step else self.texts["where_none"], f.n(n))
            for step, n in sorted(report.help_requests.items(), key=lambda kv: -kv[1])
        ]
        return self._page(
            "volunteers.html",
            {
                **self._common(viewer, "volunteers", report),
                "title": self.texts["volunteers_title"].format(scope=report.scope),
                "volunteers": [
                    (code, f.n(s), f.n(d), f.n(h)) for code, s, d, h in report.volunteers
                ],
                "help_desk": pages.help_desk(
                    helped, self.texts, helpdesk.waited(helped.median_claim_s, self.desk.texts), f
                )
                if helped.count
                else self.texts["no_help_requests"],
                "helpers": [
                    (code or self.texts["helper_official"], f.n(taken), f.n(installed))
                    for code, taken, installed in helped.by_helper
                ],
                "presses_total": self.texts["help_presses_text"].format(
                    count=f.n(sum(report.help_requests.values()))
                ),
                "presses": presses,
                "bursts": [
                    self.desk.texts["burst_line"].format(
                        code=code, count=f.n(count), limit=f.n(officials.ASSISTED_PER_HOUR)
                    )
                    for code, count in report.bursts
                ],
            },
        )

    async def _announcements(
        self,
        _request: web.Request,
        viewer: Viewer,
        *,
        text: str = "",
        error: str = "",
        notice: str = "",
        status: int = 200,
    ) -> web.StreamResponse:
        f = self._formatter()
        scope = self.desk.scope_name(viewer.scope)
        last = await self.desk.announcement_progress(viewer.official)
        progress = (
            self.texts["progress_text"].format(
                total=f.n(last.total),
                sent=f.n(last.sent),
                waiting=f.n(last.waiting),
                failed=f.n(last.failed),
            )
            if last
            else self.texts["no_progress"]
        )
        return self._page(
            "announcements.html",
            {
                **self._common(viewer, "announcements"),
                "title": self.texts["announcements_title"].format(scope=scope),
                "lead": self.texts["announcements_lead"].format(
                    scope=scope,
                    limit=officials.BROADCASTS_PER_DAY,
                    length=f.n(officials.BROADCAST_LIMIT),
                ),
                "text": text,
                "error": error,
                "notice": notice,
                "progress": progress,
                "limit": officials.BROADCAST_LIMIT,
            },
            status=status,
        )

    async def _announce_preview(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        """Compose -> preview: the same checks and limits as /thongbao (the same code)."""
        form = await request.post()
        text = str(form.get("text", "")).replace("\r\n", "\n").strip()
        if form.get("edit"):
            return await self._announcements(request, viewer, text=text)
        draft = await self.desk.prepare_announcement(viewer.official, text)
        if isinstance(draft, Refusal):
            error = draft.text(self.desk.texts)
            return await self._announcements(request, viewer, text=text, error=error, status=422)
        return self._page(
            "preview.html",
            {
                **self._common(viewer, "announcements"),
                "title": self.texts["preview_title"],
                "message": draft.message,
                "draft": draft.id,
                "text": text,
                "lead": self.texts["preview_lead"].format(
                    count=self._formatter().n(draft.recipients), scope=draft.scope
                ),
            },
        )

    async def _announce_send(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        form = await request.post()
        draft = str(form.get("draft", ""))
        if not draft.isdigit():
            raise web.HTTPBadRequest()
        sent = await self.desk.send_announcement(viewer.official, int(draft))
        if isinstance(sent, Refusal):
            return await self._announcements(
                request, viewer, error=sent.text(self.desk.texts), status=422
            )
        if sent is None:
            return await self._announcements(request, viewer, notice=self.texts["already_sent"])
        notice = self.texts["queued"].format(count=self._formatter().n(sent))
        return await self._announcements(request, viewer, notice=notice)

    async def _downloads(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        scope = self.desk.scope_name(viewer.scope)
        return self._page(
            "downloads.html",
            {
                **self._common(viewer, "downloads"),
                "title": self.texts["downloads_title"].format(scope=scope),
                "posters": officials.communes_in(self.config, viewer.scope),
                "providers": self.config.providers,
            },
        )

    async def _download(self, request: web.Request, viewer: Viewer) -> web.StreamResponse:
        name = request.match_info["name"]
        day = self.clock().astimezone(self.config.timezone).date().isoformat()
        scope = viewer.scope
        if name == "chu-ky-so.xlsx":
            data = await self.desk.export_xlsx(scope)
            kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            filename = f"chu-ky-so-{day}.xlsx"
        elif name in ("theo-thon.csv", "theo-ngay.csv"):
            dialect: Dialect = "excel" if request.query.get("dialect") == "excel" else "excel-vn"
            table = "villages" if name == "theo-thon.csv" else "days"
            data = await self.desk.export_csv(scope, table, dialect)
            kind, filename = "text/csv; charset=utf-8", f"{name[:-4]}-{day}.csv"
        elif name.startswith("ap-phich-") and name.endswith(".pdf"):
            commune = self.config.commune(name[len("ap-phich-") : -4])
            if commune is None or not officials.covers(self.config, scope, commune.code):
                return self._message("forbidden_title", "forbidden_text", status=403)
            try:
                link = printing.commune_link(self.config)
                data = printing.poster_pdf(
                    self.content, self.print_texts, self.config, commune, link, None
                )
            except printing.PrintError:
                return self._message("not_found_title", "not_found_text", status=404)
            kind, filename = "application/pdf", name
        elif name.startswith("cac-buoc-") and name.endswith(".pdf"):
            provider = self.config.provider(name[len("cac-buoc-") : -4])
            if provider is None:
                return self._message("not_found_title", "not_found_text", status=404)
            communes = officials.communes_in(self.config, scope)
            data = printing.step_card_pdf(
                self.content,
                self.print_texts,
                self.config,
                provider,
                communes[0] if len(communes) == 1 else None,
            )
            kind, filename = "application/pdf", name
        else:
            return self._message("not_found_title", "not_found_text", status=404)
        return web.Response(
            body=data,
            headers={
                **HEADERS,
                "Content-Type": kind,
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )

    async def _report(self, _request: web.Request, viewer: Viewer) -> web.StreamResponse:
        report = await self.desk.report(viewer.scope)
        f = self._formatter()
        titles = stage_titles(self.content, self.desk.texts)
        worst = report.worst_step
        stuck = sorted(report.stuck.items(), key=lambda kv: -kv[1])[:3]
        return self._page(
            "report.html",
            {
                **self._common(viewer, "report", report),
                "title": self.texts["report_title"].format(scope=report.scope),
                "week": pages.week(report, f),
                "figures": pages.headline(report, f, self.texts),
                "pace_text": _pace(report, f),
                "progress_chart": Markup(progress_svg(report, self.desk.texts, f.locale)),
                "lowest": pages.rows(report, self.config, f)[: pages.REPORT_LOWEST],
                "wide": len(report.communes) > 1,
                "volunteers": [
                    (code, f.n(s), f.n(d), f.n(h))
                    for code, s, d, h in pages.top_volunteers(report)
                ],
                "worst": self.texts["worst"].format(step=titles[worst[0]], count=f.n(worst[1]))
                if worst
                else self.texts["no_worst"],
                "stuck": [(titles.get(s, s), f.n(n)) for s, n in stuck],
                "footer": self.texts["report_footer"].format(date=f.day(report.day)),
            },
        )

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(
            body=(HERE / "static" / name).read_bytes(),
            headers={
                "Content-Type": kind,
                "Cache-Control": "max-age=3600",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # --- rendering ----------------------------------------------------------------------------

    def _page(self, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
        html = self.templates.get_template(template).render(
            t=self.texts, base=DASHBOARD_PATH, lang=self.content.locale, **context
        )
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )

    def _message(self, title: str, text: str, *, status: int = 200) -> web.Response:
        return self._page(
            "message.html",
            {"title": self.texts[title], "text": self.texts[text]},
            status=status,
        )


def _pace(report: Report, f: Formatter) -> str:
    return pace_text(report, f) or ""
