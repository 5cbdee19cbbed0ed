"""A durable inbox for webhook deliveries; replies kept with their step until sent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
    )
    op.create_index(op.f("ix_inbox_received_at"), "inbox", ["received_at"])
    op.create_index(op.f("ix_inbox_channel_user_ref"), "inbox", ["channel", "user_ref"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("user_ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("outgoing", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_deliveries_channel_user_ref"), ["channel", "user_ref"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index(batch.f("ix_deliveries_channel_user_ref"))
        batch.drop_column("outgoing")
        batch.drop_column("user_ref")
    op.drop_index(op.f("ix_inbox_channel_user_ref"), table_name="inbox")
    op.drop_index(op.f("ix_inbox_received_at"), table_name="inbox")
    op.drop_table("inbox")
