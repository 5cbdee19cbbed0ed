"""Links in text: find every link a person could follow from a message, and decide whether the
deployment allows it.

Used on every message the bot sends (anything not allowed is hidden) and on officials'
announcements (refused with the list of links). Scam messages write links so that a filter
misses them and a phone still opens them, so the text is read as a browser would read it:

- compatibility forms folded (NFKC: fullwidth letters, ``．``), the ideographic full stops that
  browsers take as dots (``。``, ``｡``), and characters that show nothing (zero-width space,
  soft hyphen, direction marks) removed -- on a copy; positions map back to the original;
- HTML character references decoded (``&#46;``), percent-escapes in a host decoded;
- ``scheme://user@host`` read as a link to *host*, with ``\\`` ending the host as in a
  browser; ``//host`` (an ``href``), ``host/path`` and ``user@host`` without a scheme;
- hosts made ASCII with IDNA (UTS 46), so ``bücher.de`` and ``xn--bcher-kva.de`` are one;
- IP addresses in any notation a browser accepts (``http://3405803783/``, hex, octal,
  dotted, IPv6) and bare dotted addresses: never allowed;
- Telegram: ``t.me``/``telegram.me``/``telegram.dog`` links, ``name.t.me`` and ``@name``
  lead to *a bot or channel*, so they are allowed only for the deployment's own bot and the
  channels its config lists -- never "any t.me link";
- any other scheme written with ``//`` (``tg://``, ``ftp://``, ``hxxp://``): never allowed.

Without a scheme, a dotted word is a link only if it ends in a real top-level domain (the
Public Suffix List shipped in the ``publicsuffixlist`` package; nothing is downloaded), as
chat apps decide what to make clickable: "1.000.000 (dong)", "TP.HCM" and "v.v." are not
links. Anything that cannot be read for sure is refused, never allowed.

An allowed domain allows its subdomains; the config may only list domains at or below a
*registrable* domain (:func:`domain_problem`), never a public suffix such as "com" or
"gov.vn", which would allow every site under it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from urllib.parse import unquote

import idna
from publicsuffixlist import PublicSuffixList

from bot.textnorm import INVISIBLE

#: Hosts whose paths name a Telegram bot, user or channel (and their subdomains name one).
TELEGRAM_HOSTS = ("t.me", "telegram.me", "telegram.dog")
#: A Telegram username: 5-32 letters, digits and underscores, starting with a letter.
TELEGRAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
#: Schemes a browser treats as "special": their ``:`` may be followed by any number of slashes
#: (``http:evil.com`` is a link), and a backslash ends the host as a slash does.
SPECIAL_SCHEMES = ("http", "https", "ftp", "ftps", "ws", "wss", "file")
#: Schemes an allowed link may use.
WEB_SCHEMES = ("http", "https")

#: Dots a browser reads as the dot between labels, beyond what NFKC folds to ".".
_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\uff0e": "."})
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
#: Where a link ends: white space, quotes and angle brackets (as in ``<a href="...">``).
_END = r"\s<>\"'`"
_FIND = re.compile(
    rf"""
    (?:
        (?<![\w+.\-])
        (?:(?P<special>{"|".join(SPECIAL_SCHEMES)}):(?P<slashes>[/\\]*)
          |(?P<scheme>[a-z][a-z0-9+.\-]{{0,30}}):(?:[/\\]{{2}}))
      | (?<![\w:/\\])(?P<relative>//|\\\\)(?=[\w\[%])
    )
    (?P<rest>[^{_END}]*)
  | (?<![\w\-])
    (?:(?P<user>[\w.+\-%!$&*=~]{{1,64}}+(?::[^\s@/<>"']{{0,64}}+)?)@)?
    (?P<host>(?:[\w\-]+\.)+[\w\-]+|\[(?=[0-9a-f.]*:[0-9a-f.]*:)[0-9a-f:.]+\])
    (?P<tail>(?::[0-9]{{1,5}})?(?:[/?#\\][^{_END}]*)?)
  | (?<![\w@.])@(?P<mention>[a-z][a-z0-9_]{{3,31}})(?![\w.@])
    """,
    re.IGNORECASE | re.VERBOSE,
)
_WORD = re.compile(r"(?<!\S)\S*?[.@:/\\]\S*")
#: Punctuation that ends a sentence rather than a link ("see dichvucong.gov.vn.").
_TRAILING = ".,;:!?)]}»”’"
_IPV4_PART = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")
_DECIMAL_OCTET = re.compile(r"^(?:0|[1-9][0-9]{0,2})$")


@dataclass(frozen=True, slots=True)
class Link:
    """A link found in a text."""

    start: int  # where it is in the original text
    end: int
    written: str  # as written, without invisible characters
    kind: str  # "web", "ip", "telegram", "scheme" (another scheme) or "invalid"
    host: str = ""  # "web": the domain in ASCII, lower case, no final dot
    telegram: str = ""  # "telegram": the bot, user or channel name, lower case
    scheme: str = ""  # "" when written without one


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Where the deployment's messages may link to."""

    #: Domains (ASCII, lower case), each allowing its subdomains.
    domains: tuple[str, ...] = ()
    #: Telegram names (lower case): the bot itself and the deployment's channels.
    telegram: frozenset[str] = frozenset()

    def allows_host(self, host: str) -> bool:
        """Whether a link to ``host`` (a domain as written in a config or a URL) is allowed."""
        domain = ascii_domain(host)
        return domain is not None and self._allows_domain(domain)

    def allows(self, link: Link) -> bool:
        if link.kind == "telegram":
            return link.telegram in self.telegram
        if link.kind != "web" or link.scheme not in ("", *WEB_SCHEMES):
            return False
        return self._allows_domain(link.host)

    def _allows_domain(self, domain: str) -> bool:
        if _telegram_host(domain):
            return False  # a Telegram link names its bot or channel: see allows()
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


def find_links(text: str) -> list[Link]:
    """Every link in ``text``, in order."""
    folded = _fold(text)
    origin: list[int] = []
    found = []
    # A link holds no white space and needs a ".", "@", ":" or "/": only such words are read.
    for word in _WORD.finditer(folded):
        pos, stop = word.span()
        while (match := _FIND.search(folded, pos, stop)) is not None:
            link = _read(match)
            if link is None:
                # Not a link after all ("TP.HCM/..."): what follows its host is read again.
                pos = match.end("host") if match.group("host") is not None else match.end()
                pos = max(pos, match.start() + 1)
                continue
            start, end, kind, host, name, scheme = link
            pos = max(end, start + 1)  # a shortened link ("evil.com.Next"): read on after it
            origin = origin or _origin(text, folded)
            begin, finish = origin[start], origin[end - 1] + 1
            written = INVISIBLE.sub("", text[begin:finish])
            found.append(Link(begin, finish, written, kind, host, name, scheme))
    return found


def foreign_links(text: str, policy: LinkPolicy) -> list[str]:
    """The links in ``text`` that ``policy`` does not allow, as written (each once)."""
    links = (link.written for link in find_links(text) if not policy.allows(link))
    return list(dict.fromkeys(links))


def scrub(text: str, policy: LinkPolicy, replacement: str) -> str:
    """``text`` with every link ``policy`` does not allow replaced by ``replacement``."""
    # A removal can make a link of what was around it ("@name//x" -> "(...)//x"): again,
    # until nothing changes (a second pass is rare; a fifth never seen).
    for _ in range(5):
        if not _MAY_LINK.search(text):
            return text  # no dot, "@", ":" or "/" of any form: no link (most short messages)
        out, last = [], 0
        for link in find_links(text):
            if not policy.allows(link):
                out += [text[last : link.start], replacement]
                last = link.end
        if not out:
            return text
        text = "".join(out) + text[last:]
    return replacement


def domain_problem(domain: str) -> str | None:
    """Why ``domain`` cannot be on a deployment's allow-list, or None if it can."""
    if not domain or any(c in domain for c in "/:@*?# \\"):
        return "give only the domain, e.g. dichvucong.gov.vn"
    ascii_ = ascii_domain(domain)
    if ascii_ is None:
        return "not a valid domain name"
    if _ends_in_number(ascii_) or ascii_.startswith("["):
        return "an IP address is never allowed"
    if _telegram_host(ascii_):
        return (
            "list Telegram channels in [links] telegram (the bot's own link is always "
            "allowed): t.me here would allow every Telegram bot and channel"
        )
    if _psl().privatesuffix(ascii_) is None:
        return "a public suffix (or unknown top-level domain): it would allow every site under it"
    return None


def ascii_domain(host: str) -> str | None:
    """``host`` as an ASCII domain (IDNA, UTS 46: lower case, fullwidth and ideographic dots
    folded), without a final dot; None if it is not a valid domain name."""
    host = INVISIBLE.sub("", unicodedata.normalize("NFKC", host).translate(_DOTS)).lower()
    host = host.rstrip(".")
    if not host:
        return None
    if host.isascii() and _ASCII_HOST.match(host):
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii").rstrip(".")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


_ASCII_HOST = re.compile(r"^(?!-)[a-z0-9\-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9\-]{1,63}(?<!-))*$")
#: A link needs one of these, or a character that NFKC folds into one of them (the test checks
#: every code point); texts without any are passed through untouched.
_MAY_LINK = re.compile(
    "[.@:/\\\\&\u2024-\u2026\u2100\u2101\u2105\u2106\u2488-\u249b\u2a74\u3002\u33c2\u33c7"
    "\u33d8\ufe12\ufe13\ufe19\ufe30\ufe52\ufe55\ufe60\ufe68\ufe6b\uff06\uff0e\uff0f\uff1a"
    "\uff20\uff3c\uff61\U0001f100]"
)


@cache
def _psl() -> PublicSuffixList:
    # Loaded once, on first use (about 0.1 s). Unknown top-level domains are *not* suffixes
    # here, so that "done.next" is not a link and "intranet.local" is not a registrable domain.
    return PublicSuffixList(accept_unknown=False)


@lru_cache(maxsize=4096)
def _known_tld(label: str) -> bool:
    """Whether ``label`` (as written) is a top-level domain."""
    return _psl().publicsuffix("x." + (ascii_domain(label) or "-")) is not None


def _telegram_host(domain: str) -> bool:
    return any(domain == h or domain.endswith("." + h) for h in TELEGRAM_HOSTS)


class _FoldTable(dict[int, str]):
    """For ``str.translate``: each character as a browser reads it (NFKC, ideographic dots as
    dots, invisible characters gone), worked out once per character."""

    def __missing__(self, code: int) -> str:
        piece = INVISIBLE.sub("", unicodedata.normalize("NFKC", chr(code))).translate(_DOTS)
        if len(self) < 100_000:  # bounded: a text of rare characters cannot grow it for ever
            self[code] = piece
        return piece


_FOLD = _FoldTable()


def _fold(text: str) -> str:
    """``text`` as a browser reads it (each character folded alone, so that positions can be
    mapped back: :func:`_origin`)."""
    if "&" in text and _ENTITY.search(text):
        return _fold_entities(text)[0]
    return text.translate(_FOLD)


def _origin(text: str, folded: str) -> list[int]:
    """For each character of ``folded`` (and one past its end), where in ``text`` it came
    from. Only worked out for texts with a link in them."""
    if folded == text:
        return list(range(len(text) + 1))
    return _fold_entities(text)[1]


def _fold_entities(text: str) -> tuple[str, list[int]]:
    """:func:`_fold` with HTML character references decoded, and :func:`_origin`."""
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    while pos < len(text):
        entity = _ENTITY.match(text, pos) if text[pos] == "&" else None
        if entity is not None and (decoded := html.unescape(entity.group())) != entity.group():
            piece, width = decoded.translate(_FOLD), entity.end() - pos
        else:
            piece, width = _FOLD[ord(text[pos])], 1
        out.append(piece)
        origin += [pos] * len(piece)
        pos += width
    origin.append(len(text))
    return "".join(out), origin


def _read(match: re.Match[str]) -> tuple[int, int, str, str, str, str] | None:
    """(start, end, kind, host, telegram name, scheme) of a match, or None if it is not a
    link after all."""
    if match.group("mention"):
        name = match.group("mention").lower()
        return match.start(), match.end(), "telegram", "", name, ""
    if match.group("host") is not None:
        return _read_bare(match)
    scheme = (match.group("special") or match.group("scheme") or "").lower()
    rest = match.group("rest")
    end = match.start("rest") + len(rest.rstrip(_TRAILING))
    rest = rest.rstrip(_TRAILING)
    if scheme == "file" or (scheme and scheme not in SPECIAL_SCHEMES):
        return match.start(), end, "scheme", "", "", scheme
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0]
    path = rest[len(authority) :]
    host = _host_of(authority)
    if not host:
        # "http://" and nothing else is no link; "http:///x" leads nowhere valid.
        return (match.start(), end, "invalid", "", "", scheme) if path else None
    kind, host, name = _classify(host, path)
    return match.start(), end, kind, host, name, scheme


def _read_bare(match: re.Match[str]) -> tuple[int, int, str, str, str, str] | None:
    host = match.group("host")
    tail = match.group("tail")
    if host.startswith("["):
        end = match.start("tail") + len(tail.rstrip(_TRAILING))
        return match.start(), end, "ip", "", "", ""
    labels = host.split(".")
    # The longest run of labels that makes a link: "evil.com.Next" is evil.com; a dotted
    # address "203.0.113.7" unless a longer run ends in a top-level domain.
    tld = next((n for n in range(len(labels), 1, -1) if _known_tld(labels[n - 1])), 0)
    quad = len(labels) >= 4 and all(_DECIMAL_OCTET.match(p) and int(p) < 256 for p in labels[:4])
    count = 4 if quad and tld <= 4 else tld
    if count < 2:
        return None
    host_end = match.start("host") + sum(len(label) + 1 for label in labels[:count]) - 1
    if count < len(labels):
        end, path = host_end, ""
    else:
        path = tail.rstrip(_TRAILING)
        end = match.start("tail") + len(path)
    if quad and count == 4:
        return match.start(), end, "ip", "", "", ""
    domain = ".".join(labels[:count])
    kind, domain, name = _classify(domain, re.sub(r"^:[0-9]*", "", path))
    return match.start(), end, kind, domain, name, ""


def _host_of(authority: str) -> str:
    """The host of ``user:password@host:port``."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport.partition("]")[0] + "]"
    return hostport.partition(":")[0]


def _classify(host: str, path: str) -> tuple[str, str, str]:
    """(kind, ASCII domain, Telegram name) of a link to ``host`` with ``path``."""
    host = unquote(host)
    if host.startswith("["):
        return "ip", "", ""
    folded = INVISIBLE.sub("", unicodedata.normalize("NFKC", host).translate(_DOTS)).lower()
    if _ends_in_number(folded.rstrip(".")):
        return "ip", "", ""  # an address in some notation, or no valid host at all
    domain = ascii_domain(folded)
    if domain is None:
        return "invalid", "", ""
    if _telegram_host(domain):
        return "telegram", domain, _telegram_name(domain, path)
    return "web", domain, ""


def _ends_in_number(host: str) -> bool:
    """Whether a browser would read ``host`` as an IPv4 address (WHATWG URL: its last label
    is a number in decimal, octal or hex) -- valid or not, it is no domain."""
    last = host.rsplit(".", 1)[-1]
    return bool(last) and bool(_IPV4_PART.match(last))


def _telegram_name(domain: str, path: str) -> str:
    """The bot or channel a Telegram link opens ("" if it opens no named one)."""
    for base in TELEGRAM_HOSTS:
        if domain.endswith("." + base):
            return domain[: -len(base) - 1]
    segments = re.split(r"[/\\?#]", path.lstrip("/\\"), maxsplit=2)[:2]
    if segments and segments[0].lower() == "s" and len(segments) > 1:
        segments = segments[1:]  # t.me/s/channel: the channel's web preview
    name = unquote(segments[0]) if segments else ""
    return name.lower() if TELEGRAM_NAME.match(name) else ""
