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
from tests.integration.case_steps import (
    TERMS_WITHOUT_ADDRESS,
    agree_on_return,
    ok,
    open_case,
    refund_request,
    refunds,
    seller,
)
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


def _d3_of(db: Database, case_id: str) -> tuple[object, ...]:
    """The case's stored deadline and its pending row in `deadlines`: kind, action, party."""
    with db.engine.connect() as conn:
        stored = conn.execute(select(t.cases.c.deadline).where(t.cases.c.id == case_id)).scalar()
        row = conn.execute(
            select(t.deadlines.c.kind, t.deadlines.c.action, t.deadlines.c.party).where(
                t.deadlines.c.case_id == case_id,
                t.deadlines.c.fired_at.is_(None),
                t.deadlines.c.cleared_at.is_(None),
            )
        ).one()
    return (stored["kind"], stored["action"], stored["party"]), tuple(row)


def test_0009_hands_the_waiting_returns_with_nowhere_to_go_to_the_seller(api: Api) -> None:
    """Returns agreed before 0009 with no address and no label waited on the buyer, and
    expired; after it they wait on the seller, as new ones do. Those with an address stay."""
    addressed = agree_on_return(api)["id"]
    api.put_order("o_nowhere", seller_terms=TERMS_WITHOUT_ADDRESS)
    opened = ok(api.open_case("o_nowhere", request=refund_request(return_required=True)), 201)
    nowhere = seller(api, opened["id"], "accept")["id"]
    api.app.db.dispose()
    db = Database(str(api.app.db.engine.url.render_as_string(hide_password=False)))
    escalate = (("D3", "auto_escalate", "seller"),) * 2
    expire = (("D3", "expire", "buyer"),) * 2
    try:
        assert (_d3_of(db, nowhere), _d3_of(db, addressed)) == (escalate, expire)

        command.downgrade(_alembic_config(db), "0008")
        assert (_d3_of(db, nowhere), _d3_of(db, addressed)) == (expire, expire)  # as before

        migrate(db)
        assert (_d3_of(db, nowhere), _d3_of(db, addressed)) == (escalate, expire)
    finally:
        migrate(db)
        db.dispose()
