"""Remote sessions, their participants and recordings, and the append-only session log.

The database refuses UPDATE and DELETE on ``session_events`` (and TRUNCATE on
PostgreSQL), as migration 0002 does for the case history: a session's log can
only grow.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
APPEND_ONLY_TABLE = "session_events"


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade():
    op.create_table(
        "remote_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "identification",
                "interrogation",
                "meeting",
                name="sessionkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "scheduled",
                "in_progress",
                "completed",
                "aborted",
                name="sessionstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        _when("scheduled_start"),
        _when("scheduled_end"),
        sa.Column("sites", JSON, nullable=False),
        sa.Column("video_link", sa.String(length=500), nullable=True),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("ended_at", nullable=True),
        sa.Column("abort_reason", sa.Text(), nullable=True),
        sa.Column("record_document_id", sa.Uuid(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("log_head", sa.String(length=64), nullable=False),
        sa.Column("closing_signature", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_remote_sessions_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_remote_sessions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["record_document_id"],
            ["documents.id"],
            name=op.f("fk_remote_sessions_record_document_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_remote_sessions_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_sessions")),
    )
    with op.batch_alter_table("remote_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_remote_sessions_case", ["case_id", "scheduled_start"], unique=False
        )

    op.create_table(
        "session_participants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "presiding",
                "administrator",
                "identifier",
                "suspect",
                "lawyer",
                "interpreter",
                "guardian",
                "witness",
                name="participantrole",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("site", sa.String(length=40), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        _when("code_expires_at", nullable=True),
        _when("code_used_at", nullable=True),
        sa.Column("token_jti", sa.Uuid(), nullable=True),
        _when("token_expires_at", nullable=True),
        _when("revoked_at", nullable=True),
        sa.Column("added_by", sa.Uuid(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_session_participants_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["case_persons.id"],
            name=op.f("fk_session_participants_person_id_case_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["remote_sessions.id"],
            name=op.f("fk_session_participants_session_id_remote_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_session_participants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_participants")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_session_participants_code_hash")),
    )
    with op.batch_alter_table("session_participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_participants_session", ["session_id", "role"], unique=False
        )

    op.create_table(
        "session_recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("site", sa.String(length=40), nullable=True),
        sa.Column("added_by", sa.Uuid(), nullable=False),
        _when("added_at"),
        sa.ForeignKeyConstraint(
            ["added_by"], ["users.id"], name=op.f("fk_session_recordings_added_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence.id"],
            name=op.f("fk_session_recordings_evidence_id_evidence"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["remote_sessions.id"],
            name=op.f("fk_session_recordings_session_id_remote_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_recordings")),
        sa.UniqueConstraint("session_id", "evidence_id", name="uq_session_recordings_evidence"),
    )

    op.create_table(
        "session_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _when("at"),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_participant_id", sa.Uuid(), nullable=True),
        sa.Column("subject_participant_id", sa.Uuid(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_participant_id"],
            ["session_participants.id"],
            name=op.f("fk_session_events_actor_participant_id_session_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_session_events_actor_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["remote_sessions.id"],
            name=op.f("fk_session_events_session_id_remote_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_participant_id"],
            ["session_participants.id"],
            name=op.f("fk_session_events_subject_participant_id_session_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_events")),
        sa.UniqueConstraint("session_id", "seq", name="uq_session_events_seq"),
    )
    _refuse_changes(APPEND_ONLY_TABLE)


def _refuse_changes(table: str) -> None:
    """Triggers as in 0002; PostgreSQL reuses its ``fieldcase_refuse_change`` function."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION fieldcase_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION fieldcase_refuse_change()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, "
            f"'{operation} on {table} is not allowed: the table is append-only'); END"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {APPEND_ONLY_TABLE}_append_only ON {APPEND_ONLY_TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {APPEND_ONLY_TABLE}_no_truncate ON {APPEND_ONLY_TABLE}")
    else:
        for operation in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {APPEND_ONLY_TABLE}_no_{operation}")
    op.drop_table("session_events")
    op.drop_table("session_recordings")
    with op.batch_alter_table("session_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_session_participants_session")
    op.drop_table("session_participants")
    with op.batch_alter_table("remote_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_remote_sessions_case")
    op.drop_table("remote_sessions")
