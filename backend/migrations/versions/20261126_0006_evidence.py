"""Evidence items, their append-only chain of custody, disposal requests and integrity alerts.

The database refuses UPDATE and DELETE on custody events (triggers on SQLite
and PostgreSQL; on PostgreSQL TRUNCATE too), as it does for the case history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CUSTODY = "custody_events"


def upgrade():
    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "photo",
                "audio",
                "video",
                "document",
                "other",
                name="evidencekind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=False),
        sa.Column("latitude", sa.String(length=32), nullable=True),
        sa.Column("longitude", sa.String(length=32), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("device_pk", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("signed_fields", JSON, nullable=False),
        sa.Column("device_signature", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum("held", "disposed", name="evidencestatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_evidence_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_evidence_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["device_pk"], ["devices.id"], name=op.f("fk_evidence_device_pk_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("upload_id", name=op.f("uq_evidence_upload_id")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_sha256"), ["sha256"], unique=False)

    op.create_table(
        CUSTODY,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column(
            "event",
            sa.Enum(
                "collected",
                "uploaded",
                "verified",
                "viewed",
                "downloaded",
                "exported",
                "transferred",
                "stored",
                "returned",
                "disposed",
                name="custodyeventtype",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("place", sa.String(length=300), nullable=True),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_custody_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name=op.f("fk_custody_events_evidence_id_evidence")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_events")),
    )
    with op.batch_alter_table(CUSTODY, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_custody_events_evidence_id"), ["evidence_id"], unique=False
        )

    op.create_table(
        "evidence_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("corrupted", "missing", name="alertkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name=op.f("fk_evidence_alerts_evidence_id_evidence")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_alerts")),
    )
    with op.batch_alter_table("evidence_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_alerts_open", ["resolved", "evidence_id", "kind"], unique=False
        )

    op.create_table(
        "evidence_disposals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "returned",
                name="approvalstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_evidence_disposals_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence.id"],
            name=op.f("fk_evidence_disposals_evidence_id_evidence"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_evidence_disposals_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_disposals")),
    )
    with op.batch_alter_table("evidence_disposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_disposals_evidence_id"), ["evidence_id"], unique=False
        )

    _refuse_changes_to_custody()


def _refuse_changes_to_custody():
    """The trigger function ``fieldcase_refuse_change`` comes from revision 0002."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {CUSTODY}_append_only BEFORE UPDATE OR DELETE ON {CUSTODY} "
            "FOR EACH ROW EXECUTE FUNCTION fieldcase_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {CUSTODY}_no_truncate BEFORE TRUNCATE ON {CUSTODY} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fieldcase_refuse_change()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {CUSTODY}_no_{operation.lower()} BEFORE {operation} "
            f"ON {CUSTODY} BEGIN SELECT RAISE(ABORT, "
            f"'{operation} on {CUSTODY} is not allowed: the table is append-only'); END"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {CUSTODY}_append_only ON {CUSTODY}")
        op.execute(f"DROP TRIGGER IF EXISTS {CUSTODY}_no_truncate ON {CUSTODY}")
    else:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {CUSTODY}_no_{operation}")

    with op.batch_alter_table("evidence_disposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_disposals_evidence_id"))
    op.drop_table("evidence_disposals")
    with op.batch_alter_table("evidence_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_alerts_open")
    op.drop_table("evidence_alerts")
    with op.batch_alter_table(CUSTODY, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custody_events_evidence_id"))
    op.drop_table(CUSTODY)
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_sha256"))
        batch_op.drop_index(batch_op.f("ix_evidence_case_id"))
    op.drop_table("evidence")
