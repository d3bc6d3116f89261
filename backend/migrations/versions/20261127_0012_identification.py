"""Identification lineups, their members and each identifier's procedure; the
documents' ``needs_witness`` flag (a 见证人 attested the act recorded).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STAGES = ("interviewed", "assigned", "viewing", "choice", "confidence", "done", "stopped")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.partition(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{referred}"))


def upgrade():
    op.create_table(
        "identification_lineups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("suspicion_reason", sa.Text(), nullable=False),
        sa.Column("filler_criteria", sa.Text(), nullable=False),
        sa.Column("target_key", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("identification_lineups", "session_id", "remote_sessions.id"),
        _fk("identification_lineups", "case_id", "cases.id"),
        _fk("identification_lineups", "created_by", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identification_lineups")),
    )
    op.create_index("ix_identification_lineups_session", "identification_lineups", ["session_id"])

    op.create_table(
        "identification_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lineup_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("is_target", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("evidence_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("keys", JSON, nullable=False),
        _fk("identification_members", "lineup_id", "identification_lineups.id"),
        _fk("identification_members", "person_id", "case_persons.id"),
        _fk("identification_members", "evidence_id", "evidence.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identification_members")),
        sa.UniqueConstraint("lineup_id", "ordinal", name="uq_identification_members"),
    )

    op.create_table(
        "identification_tracks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("identifier_key", sa.String(length=80), nullable=False),
        sa.Column(
            "stage",
            sa.Enum(*STAGES, name="stage", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("interviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lineup_id", sa.Uuid(), nullable=True),
        sa.Column("presentation", sa.String(length=16), nullable=True),
        sa.Column("positions", JSON, nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responses", JSON, nullable=False),
        sa.Column("choice", JSON, nullable=True),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repeat_of", JSON, nullable=False),
        sa.Column("refused_reuse", sa.Integer(), nullable=False),
        sa.Column("record_document_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk("identification_tracks", "session_id", "remote_sessions.id"),
        _fk("identification_tracks", "case_id", "cases.id"),
        _fk("identification_tracks", "participant_id", "session_participants.id"),
        _fk("identification_tracks", "lineup_id", "identification_lineups.id"),
        _fk("identification_tracks", "record_document_id", "documents.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identification_tracks")),
        sa.UniqueConstraint("participant_id", name="uq_identification_tracks_participant"),
    )
    op.create_index(
        "ix_identification_tracks_identifier",
        "identification_tracks",
        ["identifier_key", "case_id"],
    )
    op.create_index("ix_identification_tracks_session", "identification_tracks", ["session_id"])
    op.add_column(
        "documents",
        sa.Column("needs_witness", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade():
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("needs_witness")
    op.drop_index("ix_identification_tracks_session", table_name="identification_tracks")
    op.drop_index("ix_identification_tracks_identifier", table_name="identification_tracks")
    op.drop_table("identification_tracks")
    op.drop_table("identification_members")
    op.drop_index("ix_identification_lineups_session", table_name="identification_lineups")
    op.drop_table("identification_lineups")
