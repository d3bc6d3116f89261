"""Inspections, key incidents, problems and their rectification, and the case-handling area register.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 23:02:12.938091

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "key_incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("marked_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_key_incidents_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["marked_by"], ["users.id"], name=op.f("fk_key_incidents_marked_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_key_incidents_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_incidents")),
        sa.UniqueConstraint("incident_id", name=op.f("uq_key_incidents_incident_id")),
    )
    with op.batch_alter_table("key_incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_key_incidents_unit_created", ["unit_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "inspections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column(
            "result",
            sa.Enum("ok", "problems_found", name="inspectionresult", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("inspector_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(case_id IS NULL) <> (incident_id IS NULL)",
            name=op.f("ck_inspections_case_or_incident"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_inspections_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_inspections_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["inspector_id"], ["users.id"], name=op.f("fk_inspections_inspector_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_inspections_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index("ix_inspections_case", ["case_id"], unique=False)
        batch_op.create_index("ix_inspections_incident", ["incident_id"], unique=False)
        batch_op.create_index(
            "ix_inspections_unit_created", ["unit_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "handling_area_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("id_number", sa.String(length=32), nullable=True),
        sa.Column(
            "purpose",
            sa.Enum(
                "questioning",
                "continued_questioning",
                "other",
                name="areapurpose",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=False),
        sa.Column(
            "escort_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("detention_possible", sa.Boolean(), nullable=False),
        sa.Column("many_or_identity_unknown", sa.Boolean(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("exited_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_handling_area_entries_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_handling_area_entries_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["exited_by"], ["users.id"], name=op.f("fk_handling_area_entries_exited_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["case_persons.id"],
            name=op.f("fk_handling_area_entries_person_id_case_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_handling_area_entries_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handling_area_entries")),
    )
    with op.batch_alter_table("handling_area_entries", schema=None) as batch_op:
        batch_op.create_index("ix_handling_area_entries_case", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_handling_area_entries_unit_entered", ["unit_id", "entered_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_handling_area_entries_unit_inside", ["unit_id", "exited_at"], unique=False
        )

    op.create_table(
        "problems",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("responsible_id", sa.Uuid(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "submitted", "closed", name="problemstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("filed_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(case_id IS NULL) <> (incident_id IS NULL)", name=op.f("ck_problems_case_or_incident")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_problems_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["filed_by"], ["users.id"], name=op.f("fk_problems_filed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_problems_incident_id_incidents")
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_problems_inspection_id_inspections"),
        ),
        sa.ForeignKeyConstraint(
            ["responsible_id"], ["users.id"], name=op.f("fk_problems_responsible_id_users")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_problems_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
    )
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.create_index("ix_problems_case", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_problems_responsible_created", ["responsible_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_problems_status_deadline", ["status", "deadline"], unique=False)
        batch_op.create_index(
            "ix_problems_unit_created", ["unit_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "problem_rectifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("problem_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "submitted",
                "accepted",
                "returned",
                name="rectificationkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column(
            "evidence_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "document_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_problem_rectifications_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"],
            ["problems.id"],
            name=op.f("fk_problem_rectifications_problem_id_problems"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_rectifications")),
    )
    with op.batch_alter_table("problem_rectifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_problem_rectifications_problem", ["problem_id", "created_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("problem_rectifications", schema=None) as batch_op:
        batch_op.drop_index("ix_problem_rectifications_problem")

    op.drop_table("problem_rectifications")
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_index("ix_problems_unit_created")
        batch_op.drop_index("ix_problems_status_deadline")
        batch_op.drop_index("ix_problems_responsible_created")
        batch_op.drop_index("ix_problems_case")

    op.drop_table("problems")
    with op.batch_alter_table("handling_area_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_handling_area_entries_unit_inside")
        batch_op.drop_index("ix_handling_area_entries_unit_entered")
        batch_op.drop_index("ix_handling_area_entries_case")

    op.drop_table("handling_area_entries")
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_unit_created")
        batch_op.drop_index("ix_inspections_incident")
        batch_op.drop_index("ix_inspections_case")

    op.drop_table("inspections")
    with op.batch_alter_table("key_incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_key_incidents_unit_created")

    op.drop_table("key_incidents")
