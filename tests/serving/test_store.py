"""The store: migrations create the models' schema; assessments and audit are append-only."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError

from serving.auth import Principal
from serving.service import ASSESSMENT_INSERT, assessment_values, audit
from serving.store import Assessment, AuditEvent, Base, Patient, Store, utcnow

KEY = Principal("key_test", "clinician", "site-a")


def test_the_migrations_create_exactly_the_schema_of_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_migrating_twice_changes_nothing(store: Store) -> None:
    store.migrate()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0001"


def _one_assessment(store: Store) -> None:
    doc = {
        "patient_id": "p1",
        "as_of": "2024-03-01",
        "risk": {"365": 0.2},
        "risk_band": "intermediate",
        "alarm": False,
        "alarm_threshold": 0.3,
        "alarm_horizon_days": 365.0,
        "model": {"name": "ctcmon-recurrence", "version": "1"},
        "assessment_id": "a-1",
        "issued_at": "2024-03-01T10:00:00Z",
    }
    with store.writing() as s:
        s.add(
            Patient(
                site_id="site-a",
                patient_id="p1",
                index_date=date(2024, 1, 1),
                covariates={},
                revision=0,
                created_at=utcnow(),
            )
        )
        s.execute(
            ASSESSMENT_INSERT,
            {**assessment_values(doc, KEY, "risk"), "patient_pk": None, "draw_pk": None},
        )
        audit(s, KEY, "write", "risk", "p1")


@pytest.mark.parametrize(
    "statement",
    [
        update(Assessment).values(risk_band="low"),
        delete(Assessment),
        update(AuditEvent).values(action="read"),
        delete(AuditEvent),
    ],
    ids=["update-assessment", "delete-assessment", "update-audit", "delete-audit"],
)
def test_the_database_refuses_to_change_or_remove_an_issued_assessment_or_audit_event(
    store: Store, statement: object
) -> None:
    _one_assessment(store)
    with pytest.raises(DatabaseError, match="append-only"), store.writing() as s:
        s.execute(statement)  # type: ignore[call-overload]


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/x.db")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.dispose()
