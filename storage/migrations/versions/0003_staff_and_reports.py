"""Staff (officials, volunteers), invites, assisted completions, audit log, population;
events and first-reached stages by commune; a covering index for completion figures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assisted",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("volunteer", sa.String(length=32), nullable=False),
        sa.Column("commune", sa.String(length=16), nullable=False),
        sa.Column("village", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assisted")),
    )
    with op.batch_alter_table("assisted", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assisted_commune_at"), ["commune", "at"], unique=False
        )

    op.create_table(
        "audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_at"), ["at"], unique=False)

    op.create_table(
        "invites",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_invites")),
    )
    op.create_table(
        "population",
        sa.Column("commune", sa.String(length=16), nullable=False),
        sa.Column("village", sa.String(length=64), nullable=False),
        sa.Column("adults", sa.Integer(), nullable=False),
        sa.Column("adults_present", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("commune", "village", name=op.f("pk_population")),
    )
    op.create_table(
        "reached",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=80), nullable=False),
        sa.Column("commune", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "user_ref", "stage", name=op.f("pk_reached")),
    )
    with op.batch_alter_table("reached", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reached_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reached_commune_stage"), ["commune", "stage"], unique=False
        )

    op.create_table(
        "staff",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_ref", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("commune", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("channel", "user_ref", name=op.f("uq_staff_channel_user_ref")),
        sa.UniqueConstraint("code", name=op.f("uq_staff_code")),
    )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_commune"), ["commune"], unique=False)

    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_completions_commune_completed_at"))
        batch_op.create_index(
            batch_op.f("ix_completions_commune_village_provider_referral_completed_at"),
            ["commune", "village", "provider", "referral", "completed_at"],
            unique=False,
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("commune", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_events_commune_kind_step"), ["commune", "kind", "step"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_commune_kind_step"))
        batch_op.drop_column("commune")

    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_completions_commune_village_provider_referral_completed_at")
        )
        batch_op.create_index(
            batch_op.f("ix_completions_commune_completed_at"),
            ["commune", "completed_at"],
            unique=False,
        )

    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_commune"))

    op.drop_table("staff")
    with op.batch_alter_table("reached", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reached_commune_stage"))
        batch_op.drop_index(batch_op.f("ix_reached_at"))

    op.drop_table("reached")
    op.drop_table("population")
    op.drop_table("invites")
    with op.batch_alter_table("audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_at"))

    op.drop_table("audit")
    with op.batch_alter_table("assisted", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assisted_commune_at"))

    op.drop_table("assisted")
