"""The words the content, the engine and the store share, each declared once.

The flow (content/<locale>/flow.toml) names actions, option conditions, placeholders and
"@" targets; the engine implements each of them exactly once (a registry per kind, checked
complete by tests/bot/test_vocabulary.py); content checking accepts exactly these names;
the store reads the event kinds the engine records. Adding a word means adding it here and
its one implementation -- nothing is paired by hand.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What an option, a command or a global word does (the engine's action registry)."""

    START = "start"  # /start: greet a new user, offer to resume, or welcome back
    MENU = "menu"
    HELP = "help"  # how to use the bot, then the current screen again
    STOP = "stop"  # no more messages; progress kept
    HUMAN = "human"  # the way to a person
    BACK = "back"
    DELETE = "delete"  # asks to confirm deleting everything
    ERASE = "erase"  # deletes everything (only from the confirmation)
    RESUME = "resume"  # back to where the user was before a detour
    RESTART = "restart"  # start over, keeping consent and the completion report
    CONSENT = "consent"  # agree to the completion report being kept
    DECLINE = "decline"
    WITHDRAW = "withdraw"  # withdraw consent: the report is deleted
    PRIVACY = "privacy"  # what the bot keeps
    SCAM = "scam"  # the scam-signs card
    REMIND_ON = "remind_on"
    REMIND_OFF = "remind_off"
    ANNOUNCE_ON = "announce_on"  # agree to the commune's announcements (asked on its own)
    ANNOUNCE_OFF = "announce_off"
    HELP_REQUEST = "help_request"  # "a person, please": the request's state, or the form
    HELP_SEND = "help_send"  # consent given: the request is made
    HELP_CANCEL = "help_cancel"  # the citizen cancels their request (the help desk does it)
    HELP_CLOSE = "help_close"  # the citizen ends the chat (outcome in answers.help_outcome)
    HELP_REPORT = "help_report"  # the citizen reports their helper to the officials
    HELP_COUNT = "help_count"  # consent to count a helped install for the village


#: Actions an option may run from any screen ("g:" options, such as "human help"): nothing
#: that changes data without its own confirmation.
GLOBAL_ACTIONS = frozenset(
    {
        Action.START,
        Action.MENU,
        Action.HELP,
        Action.HUMAN,
        Action.RESUME,
        Action.DELETE,
        Action.STOP,
        Action.PRIVACY,
        Action.SCAM,
        Action.HELP_REQUEST,
    }
)


class Target(StrEnum):
    """Targets an option may go to that the engine resolves at run time."""

    INSTALL = "@install"  # the first install step for the chosen provider (or the picker)
    REPORT = "@report"  # the completion report (consent first, or "already reported")
    RESUME = "@resume"  # back to where the user was
    NEXT = "@next"  # the next install step
    PREV = "@prev"  # the previous install step
    MAIN = "@main"  # an install step's main view
    STUCK = "@stuck"  # its "I am stuck" view
    WHY = "@why"  # its "why is this needed" view
    MORE = "@more"  # the next page of a pick list
    HELP_PLACE = "@help_place"  # a help request's commune and village (asked if not known)
    HELP_WHEN = "@help_when"  # when (a visit or the support point) or straight to consent
    HELP_READY = "@help_ready"  # a home visit's details are typed: the request opens


#: Targets the content may name in `goto`, `back`, `next` (the others are the engine's own).
CONTENT_TARGETS = frozenset(
    {
        Target.INSTALL,
        Target.REPORT,
        Target.RESUME,
        Target.HELP_PLACE,
        Target.HELP_WHEN,
        Target.HELP_READY,
    }
)


class OptionCondition(StrEnum):
    """When an option is shown (an option's `when`)."""

    HAS_RETURN = "has_ret"  # there is something to go back to
    COMPLETED = "completed"  # the user reported completion
    NOT_COMPLETED = "not_completed"
    CONSENTED = "consented"  # the user agreed to the report being kept
    REMINDERS_ON = "reminders_on"
    HELP_CLAIMED = "help_claimed"  # the user's help request was taken by someone


class Placeholder(StrEnum):
    """Names a text may use in {braces}; the engine fills each from config and state."""

    APP = "app"
    PROVIDER = "provider"
    PUBLISHER = "publisher"
    STORE = "store"
    SITE = "site"
    HOTLINE = "hotline"
    PROVIDERS = "providers"
    COMMUNE = "commune"
    PROVINCE = "province"
    VILLAGE = "village"
    SUPPORT_NAME = "support_name"
    SUPPORT_ADDRESS = "support_address"
    SUPPORT_HOURS = "support_hours"
    SUPPORT_PHONE = "support_phone"
    SHARE_URL = "share_url"  # the bot's Telegram link (printed matter)
    WAY_IN = "way_in"  # how people reach the bot on the channel spoken on (config [ways_in])
    STEP = "step"
    TOTAL = "total"
    TITLE = "title"
    DATE = "date"
    DELETE_COMMAND = "delete_command"
    CONSENT_VERSION = "consent_version"
    NAME = "name"
    CODE = "code"  # a volunteer's code: the user's own, or the one just typed
    RETENTION_MONTHS = "retention_months"
    COUNT = "count"  # how many options there are to choose from
    HELP_SUMMARY = "help_summary"  # what a help request shares, one line each
    HELP_HELPER = "help_helper"  # who took it ("the volunteer helping Dong Hoa")
    HELP_WHEN = "help_when"  # when the citizen asked to be helped
    HELP_NOTE = "help_note"  # the screen's note for the request's kind (chat, visit...)
    HELP_OUTCOME = "help_outcome"  # how the request ended, for the citizen


class Variant(StrEnum):
    """Kinds of surface a text may have its own wording for (``key@variant`` in texts.toml,
    ``"text@variant"`` in a screen of flow.toml). The engine picks them by the medium it
    speaks on (bot.model.Medium)."""

    TYPED = "typed"  # no buttons: people answer by typing a number or a word
    #: a page in a browser (the web chat): the bot cannot write first, so there are no
    #: reminders; people come back by opening the page again; a random id kept by the
    #: browser is who they are
    WEB = "web"


class ScreenKind(StrEnum):
    INFO = "info"  # texts and options
    PICK = "pick"  # a list from the config (providers, communes, villages), paged
    COMPLETE = "complete"  # entering it records the completion
    INPUT = "input"  # takes one typed answer for a help request (sealed, never in state)


class PickSource(StrEnum):
    PROVIDERS = "providers"
    COMMUNES = "communes"
    VILLAGES = "villages"


class InstallRoute(StrEnum):
    """How a provider's signature is installed: its own app, or inside VNeID."""

    APP = "app"
    VNEID = "vneid"


class ScreenId(StrEnum):
    """Screens the engine itself goes to (the content must have them)."""

    MENU = "menu"
    HUMAN = "human"
    RESUME = "resume"
    DELETE_CONFIRM = "delete_confirm"
    CHOOSE_PROVIDER = "choose_provider"
    REPORT_CONSENT = "report_consent"
    REPORT_COMMUNE = "report_commune"
    REPORT_AGAIN = "report_again"
    PRIVACY = "privacy"
    SCAM_SIGNS = "scam_signs"
    HELP_HOW = "help_how"  # the help request form's first screen
    HELP_COMMUNE = "help_commune"
    HELP_VILLAGE = "help_village"
    HELP_DAY = "help_day"
    HELP_CONSENT = "help_consent"  # what will be shared: agree or not
    HELP_LANDMARK = "help_landmark"  # a home visit: a landmark, then a phone (both optional)
    HELP_SENT = "help_sent"
    HELP_WAITING = "help_waiting"  # the request waits for someone
    HELP_CHAT = "help_chat"  # someone took it: what the citizen types goes to them
    HELP_COUNT = "help_count"  # helped to install: may it be counted?
    HELP_CLOSED = "help_closed"  # how it ended


#: Screens the engine offers only if the content has them: the offer of reminders before the
#: first install step, and, where the bot cannot write first (the web chat), the note that
#: there are none there.
REMIND_OFFER = "remind_offer"
#: Asked after the reminders, on its own: consent is given per purpose (Law 91/2025).
ANNOUNCE_OFFER = "announce_offer"
NO_REMINDERS = "no_reminders"
#: Where "I want to install" typed anywhere leads (else straight to the install: @install).
READY = "ready"
#: Where "I have a question" typed anywhere leads (else the menu).
QUESTIONS = "faq_menu"


class EventKind(StrEnum):
    """Analytics events: what happened, never what the user typed."""

    STARTED = "started"  # a new user's first message
    REFERRAL = "referral"  # came through a volunteer's link (detail: the code)
    STEP = "step"  # arrived at a screen or install step
    DONE = "done"  # finished an install step
    STUCK = "stuck"  # opened a step's "I am stuck" view
    WHY = "why"  # opened a step's "why" view
    FAQ = "faq"  # got an FAQ answer (detail: the topic)
    FAQ_MISS = "faq_miss"  # a question the bot could not answer
    HUMAN = "human"  # asked for a person
    PRIVACY = "privacy"  # read what the bot keeps
    SCAM = "scam"  # opened the scam-signs card
    SCAM_OFFERED = "scam_offered"  # described something that sounds like a scam
    STOPPED = "stopped"  # said "stop"
    BLOCKED = "blocked"  # blocked the bot
    REMINDER = "reminder"  # was reminded (the store sends the reminder)
    REMINDERS = "reminders"  # said yes or no to reminders (detail: on/off)
    ANNOUNCEMENTS = "announcements"  # said yes or no to announcements (detail: on/off)
    CONSENT = "consent"  # agreed to the report being kept (detail: consent version)
    CONSENT_DECLINED = "consent_declined"
    CONSENT_WITHDRAWN = "consent_withdrawn"  # the store deletes the report
    COMPLETED = "completed"  # reported completion (data: commune, village, provider...)
    MEDIA = "media"  # sent something that is not text (detail: its kind)
    SENSITIVE = "sensitive"  # typed something that looks like a code or an ID number
    STALE = "stale"  # pressed an old button (or typed the number of an old option)
    CLARIFY = "clarify"  # was asked back "did you mean" (detail: the best candidate)
    UNKNOWN_STEP = "unknown_step"  # came back to a screen the content no longer has
    HELP_REQUESTED = "help_requested"  # asked for a person (data: what they share)
    HELP_DETAIL = "help_detail"  # typed a landmark or phone for a visit (detail: which)
    HELP_READY = "help_ready"  # a visit's optional details are done: the request opens
    HELP_CLAIMED = "help_claimed"  # their request was taken
    HELP_CLOSED = "help_closed"  # their request ended (detail: the outcome)
    HELP_COUNTED = "help_counted"  # agreed to count the helped install (the store does)
