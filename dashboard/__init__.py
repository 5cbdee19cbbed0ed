"""The officials' web dashboard: their figures on a computer or a phone, printable.

Served by the bot's own aiohttp server (``python -m bot serve``) under /dashboard; pages are
rendered on the server (Jinja2) and work without JavaScript; nothing is fetched from
anywhere else. The figures, the charts, the spreadsheets and the announcement rules are the
very ones of the chat's /stats, /chart, /export and /thongbao (bot/stats.py, bot/charts.py,
bot/exports.py, bot/officials.py, through handlers/staff.py's StaffDesk).
"""
