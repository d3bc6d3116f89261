"""Case facts, the deadlines measured from them, and the warnings the supervision rules raise.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 22:43:58.719642

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "case_facts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_facts_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_facts")),
        sa.UniqueConstraint("case_id", "event_seq", "kind", name="uq_case_facts_event_kind"),
    )
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_facts_case_kind", ["case_id", "kind", "started_at"], unique=False
        )
        batch_op.create_index("ix_case_facts_kind_started", ["kind", "started_at"], unique=False)

    op.create_table(
        "warnings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("handler_id", sa.Uuid(), nullable=False),
        sa.Column("case_number", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "acknowledged",
                "resolved",
                name="warningstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("to_legal", sa.Boolean(), nullable=False),
        sa.Column("to_leader", sa.Boolean(), nullable=False),
        sa.Column("to_centre", sa.Boolean(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name=op.f("fk_warnings_acknowledged_by_users")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_warnings_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["handler_id"], ["users.id"], name=op.f("fk_warnings_handler_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_warnings_resolved_by_users")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_warnings_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
    )
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.create_index("ix_warnings_case", ["case_id"], unique=False)
        batch_op.create_index("ix_warnings_changed", ["changed_at", "id"], unique=False)
        batch_op.create_index(
            "ix_warnings_handler_created", ["handler_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_warnings_rule_status", ["rule_id", "status"], unique=False)
        batch_op.create_index(
            "ix_warnings_status_escalate", ["status", "escalate_at"], unique=False
        )
        batch_op.create_index(
            "ix_warnings_unit_created", ["unit_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "uq_warnings_unresolved",
            ["rule_id", "case_id", "key"],
            unique=True,
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )

    op.create_table(
        "deadlines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("fact_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_deadlines_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["fact_id"], ["case_facts.id"], name=op.f("fk_deadlines_fact_id_case_facts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
        sa.UniqueConstraint("rule_id", "fact_id", name="uq_deadlines_rule_fact"),
    )
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_case", ["case_id"], unique=False)
        batch_op.create_index("ix_deadlines_rule_due", ["rule_id", "due_at"], unique=False)
        batch_op.create_index("ix_deadlines_rule_warn", ["rule_id", "warn_at"], unique=False)


def downgrade():
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_rule_warn")
        batch_op.drop_index("ix_deadlines_rule_due")
        batch_op.drop_index("ix_deadlines_case")

    op.drop_table("deadlines")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_warnings_unresolved",
            sqlite_where=sa.text("status <> 'resolved'"),
            postgresql_where=sa.text("status <> 'resolved'"),
        )
        batch_op.drop_index("ix_warnings_unit_created")
        batch_op.drop_index("ix_warnings_status_escalate")
        batch_op.drop_index("ix_warnings_rule_status")
        batch_op.drop_index("ix_warnings_handler_created")
        batch_op.drop_index("ix_warnings_changed")
        batch_op.drop_index("ix_warnings_case")

    op.drop_table("warnings")
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_case_facts_kind_started")
        batch_op.drop_index("ix_case_facts_case_kind")

    op.drop_table("case_facts")
