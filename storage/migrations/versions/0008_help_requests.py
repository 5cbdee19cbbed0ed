"""Help requests and their messages in transit; staff chat addresses and villages; assisted
completions linked to a request (counted once with a self-report); confirmation buttons
that work once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)
LIVE = "status IN ('draft', 'open', 'claimed')"


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("address", sa.Text(), nullable=True))
        batch.add_column(sa.Column("village", sa.String(length=64), nullable=True))
    with op.batch_alter_table("assisted") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("user_ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("request_id", sa.BigInteger(), nullable=True))
        batch.create_unique_constraint(batch.f("uq_assisted_request_id"), ["request_id"])
        batch.create_index(batch.f("ix_assisted_volunteer_at"), ["volunteer", "at"])
        batch.create_index(batch.f("ix_assisted_channel_user_ref"), ["channel", "user_ref"])
    op.create_table(
        "staff_buttons",
        sa.Column("token", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("spent_at", When, nullable=True),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_staff_buttons")),
    )
    op.create_index(op.f("ix_staff_buttons_created_at"), "staff_buttons", ["created_at"])
    op.create_table(
        "help_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("commune", sa.String(length=16), nullable=False),
        sa.Column("village", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=True),
        sa.Column("part", sa.String(length=12), nullable=True),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("phone_type", sa.String(length=16), nullable=True),
        sa.Column("problem", sa.String(length=16), nullable=False),
        sa.Column("landmark", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("next_at", When, nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("opened_at", When, nullable=True),
        sa.Column("claimed_at", When, nullable=True),
        sa.Column("closed_at", When, nullable=True),
        sa.Column("volunteer_channel", sa.String(length=16), nullable=True),
        sa.Column("volunteer_ref", sa.String(length=64), nullable=True),
        sa.Column("volunteer_code", sa.String(length=32), nullable=True),
        sa.Column("focus_at", When, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_requests")),
    )
    op.create_index(
        op.f("ix_help_requests_status_next_at"), "help_requests", ["status", "next_at"]
    )
    op.create_index(
        op.f("ix_help_requests_channel_user_ref"), "help_requests", ["channel", "user_ref"]
    )
    op.create_index(
        op.f("ix_help_requests_volunteer_channel_volunteer_ref_status"),
        "help_requests",
        ["volunteer_channel", "volunteer_ref", "status"],
    )
    op.create_index(
        op.f("ix_help_requests_commune_created_at"), "help_requests", ["commune", "created_at"]
    )
    op.create_index(
        "uq_help_requests_live",
        "help_requests",
        ["channel", "user_ref"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    op.create_table(
        "help_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("claimed_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_messages")),
    )
    op.create_index(
        op.f("ix_help_messages_status_created_at"), "help_messages", ["status", "created_at"]
    )
    op.create_index(op.f("ix_help_messages_request_id"), "help_messages", ["request_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_help_messages_request_id"), table_name="help_messages")
    op.drop_index(op.f("ix_help_messages_status_created_at"), table_name="help_messages")
    op.drop_table("help_messages")
    op.drop_index("uq_help_requests_live", table_name="help_requests")
    for name in (
        "ix_help_requests_commune_created_at",
        "ix_help_requests_volunteer_channel_volunteer_ref_status",
        "ix_help_requests_channel_user_ref",
        "ix_help_requests_status_next_at",
    ):
        op.drop_index(op.f(name), table_name="help_requests")
    op.drop_table("help_requests")
    op.drop_index(op.f("ix_staff_buttons_created_at"), table_name="staff_buttons")
    op.drop_table("staff_buttons")
    with op.batch_alter_table("assisted") as batch:
        batch.drop_index(batch.f("ix_assisted_channel_user_ref"))
        batch.drop_index(batch.f("ix_assisted_volunteer_at"))
        batch.drop_constraint(batch.f("uq_assisted_request_id"), type_="unique")
        batch.drop_column("request_id")
        batch.drop_column("user_ref")
        batch.drop_column("channel")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("village")
        batch.drop_column("address")
