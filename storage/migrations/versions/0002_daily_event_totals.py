"""Daily event totals: where events older than the retention period are folded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("commune", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_events")),
        sa.UniqueConstraint(
            "day",
            "channel",
            "commune",
            "kind",
            "step",
            "detail",
            name=op.f("uq_daily_events_day_channel_commune_kind_step_detail"),
        ),
    )


def downgrade() -> None:
    op.drop_table("daily_events")
