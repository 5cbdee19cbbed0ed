"""Announcement consent apart from reminder consent: a yes to one purpose is not a yes to
the other (Law 91/2025: consent is specific). A contact is kept while either is on.

The contacts kept so far said yes to one question that bundled reminders with "the commune
may send announcements": they keep their reminders, and get announcements only once they
say yes to them on their own (``announcements`` false).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("reminders", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("announcements", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Back to one consent for both: a contact who said yes only to announcements (reminders
    # false) would get reminders then, so it is forgotten instead.
    op.execute(sa.text("DELETE FROM contacts WHERE reminders = false"))
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("announcements")
        batch.drop_column("reminders")
