"""Initial schema: keys, patients, draws, measurements, imaging, outcomes, assessments, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# frozen copies of the types (a migration must not change when serving/store.py does)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
APPEND_ONLY = ("assessments", "audit_log")


def ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        ts("created_at"),
        ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_keys_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        ts("at"),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("ref", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_key_id"), "audit_log", ["key_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JSON, nullable=False),
        ts("created_at"),
        sa.PrimaryKeyConstraint("key_id", "idempotency_key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "patients",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=False),
        sa.Column("index_date", sa.Date(), nullable=False),
        sa.Column("covariates", JSON, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("site_id", "patient_id", name=op.f("uq_patients_site_id_patient_id")),
    )
    op.create_table(
        "draws",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("patient_pk", ID, nullable=False),
        sa.Column("draw_id", sa.String(128), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        ts("created_at"),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_draws_patient_pk_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draws")),
        sa.UniqueConstraint("patient_pk", "draw_id", name=op.f("uq_draws_patient_pk_draw_id")),
    )
    op.create_table(
        "imaging",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("patient_pk", ID, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("finding", sa.String(32), nullable=False),
        sa.Column("response", sa.String(8), nullable=True),
        sa.Column("criteria", sa.String(16), nullable=True),
        ts("created_at"),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_imaging_patient_pk_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imaging")),
        sa.UniqueConstraint(
            "patient_pk", "date", "modality", name=op.f("uq_imaging_patient_pk_date_modality")
        ),
    )
    op.create_table(
        "outcomes",
        sa.Column("patient_pk", ID, nullable=False),
        sa.Column("last_followup_date", sa.Date(), nullable=False),
        sa.Column("recurrence_date", sa.Date(), nullable=True),
        sa.Column("progression_date", sa.Date(), nullable=True),
        sa.Column("death_date", sa.Date(), nullable=True),
        ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_outcomes_patient_pk_patients")
        ),
        sa.PrimaryKeyConstraint("patient_pk", name=op.f("pk_outcomes")),
    )
    op.create_table(
        "assessments",
        sa.Column("seq", ID, autoincrement=True, nullable=False),
        sa.Column("assessment_id", sa.String(36), nullable=False),
        sa.Column("site_id", sa.String(128), nullable=False),
        sa.Column("patient_id", sa.String(128), nullable=False),
        sa.Column("patient_pk", ID, nullable=True),
        sa.Column("draw_pk", ID, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        ts("issued_at"),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("risk_band", sa.String(16), nullable=False),
        sa.Column("alarm", sa.Boolean(), nullable=False),
        sa.Column("alarm_threshold", sa.Float(), nullable=False),
        sa.Column("alarm_horizon_days", sa.Float(), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_pk"], ["draws.id"], name=op.f("fk_assessments_draw_pk_draws")
        ),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_assessments_patient_pk_patients")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_assessments")),
        sa.UniqueConstraint("assessment_id", name=op.f("uq_assessments_assessment_id")),
        sa.UniqueConstraint("draw_pk", name=op.f("uq_assessments_draw_pk")),
    )
    op.create_index(
        op.f("ix_assessments_site_id_patient_id_seq"),
        "assessments",
        ["site_id", "patient_id", "seq"],
    )
    op.create_table(
        "measurements",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("draw_pk", ID, nullable=False),
        sa.Column("patient_pk", ID, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("marker", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("original_value", sa.Float(), nullable=False),
        sa.Column("original_unit", sa.String(32), nullable=False),
        sa.Column("qualifier", sa.String(1), nullable=True),
        sa.ForeignKeyConstraint(
            ["draw_pk"], ["draws.id"], name=op.f("fk_measurements_draw_pk_draws")
        ),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_measurements_patient_pk_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
        sa.UniqueConstraint(
            "patient_pk", "date", "marker", name=op.f("uq_measurements_patient_pk_date_marker")
        ),
    )
    op.create_index(op.f("ix_measurements_draw_pk"), "measurements", ["draw_pk"])
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Issued assessments and the audit trail can be added to, never changed or removed."""
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for what in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{what.lower()} BEFORE {what} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        return
    op.execute(
        "CREATE FUNCTION ctcmon_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ctcmon_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ctcmon_append_only()")
    for table in (
        "measurements",
        "assessments",
        "outcomes",
        "imaging",
        "draws",
        "patients",
        "idempotency_keys",
        "audit_log",
        "api_keys",
    ):
        op.drop_table(table)
