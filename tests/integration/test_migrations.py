"""The migrations create exactly the schema the code declares, on both backends."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import (
    Database,
    _alembic_config,
    head_revision,
    is_up_to_date,
    migrate,
)
from restitution.adapters.db.tables import metadata
from tests.integration.case_steps import open_case, refunds, seller
from tests.integration.conftest import Api
from tests.integration.test_refund_execution import FakeGateway


def test_migrated_schema_matches_the_tables_the_code_uses(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
        assert is_up_to_date(db)
        assert head_revision() is not None
    finally:
        db.dispose()


def test_0008_notes_on_their_cases_the_refunds_that_had_failed_already(api: Api) -> None:
    """A refund that failed before 0008 is on its case after it, as `refund.failed` now
    writes it: mediators see the case, told of the failure before."""
    api.app.settings = api.app.settings.model_copy(update={"refund_max_attempts": 1})
    api.app.refund_gateway = FakeGateway(failures=1)
    case = open_case(api)
    seller(api, case["id"], "accept")
    [refund] = refunds(api, case["id"])
    assert refund["status"] == "failed"
    api.app.db.dispose()  # nothing of the app's holds the tables while they change
    db = Database(str(api.app.db.engine.url.render_as_string(hide_password=False)))
    try:
        command.downgrade(_alembic_config(db), "0007")
        migrate(db)
        with db.engine.connect() as conn:
            failed_at, updated_at, before_retry = conn.execute(
                select(
                    t.cases.c.refund_failed_at,
                    t.refunds.c.updated_at,
                    t.refunds.c.attempts_before_retry,
                ).where(t.refunds.c.case_id == t.cases.c.id)
            ).one()
        assert failed_at is not None and failed_at == updated_at
        assert before_retry == 0
        assert is_up_to_date(db)
    finally:
        migrate(db)
        db.dispose()
