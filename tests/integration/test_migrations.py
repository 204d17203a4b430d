"""The migrations create exactly the schema the code declares, on both backends."""

from datetime import datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from restitution.adapters.db import tables as t
from restitution.adapters.db.engine import (
    Database,
    _alembic_config,
    head_revision,
    is_up_to_date,
    migrate,
)
from restitution.adapters.db.repository import Repository
from restitution.adapters.db.tables import metadata
from tests.integration.case_steps import (
    RETURN_ADDRESS,
    TERMS_WITHOUT_ADDRESS,
    agree_on_return,
    buyer,
    escalated_case,
    mediator,
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
    """The case's stored deadline and its pending row in `deadlines`: kind, action, party,
    and whether that row's reminder was sent."""
    d = t.deadlines.c
    with db.engine.connect() as conn:
        stored = conn.execute(select(t.cases.c.deadline).where(t.cases.c.id == case_id)).scalar()
        kind, action, party, reminded_at = conn.execute(
            select(d.kind, d.action, d.party, d.reminded_at).where(
                d.case_id == case_id, d.fired_at.is_(None), d.cleared_at.is_(None)
            )
        ).one()
    return (
        (stored["kind"], stored["action"], stored["party"]),
        (kind, action, party),
        (reminded_at is not None),
    )


def _status_since(db: Database, case_id: str) -> datetime:
    with db.engine.connect() as conn:
        return conn.execute(select(t.cases.c.status_since).where(t.cases.c.id == case_id)).scalar()


def _agreed_without_address(api: Api, order_id: str) -> str:
    api.put_order(order_id, seller_terms=TERMS_WITHOUT_ADDRESS)
    opened = ok(api.open_case(order_id, request=refund_request(return_required=True)), 201)
    return str(seller(api, opened["id"], "accept")["id"])


def test_0009_hands_the_waiting_returns_with_nowhere_to_go_to_the_seller(api: Api) -> None:
    """Returns agreed before 0009 with no address and no label waited on the buyer, and
    expired; after it they wait on the seller, as new ones do, and the seller is reminded
    even where the buyer was. Those with an address stay the buyer's."""
    late = _agreed_without_address(api, "o_late")
    api.advance(days=3)
    api.forget_tokens()
    seller(api, late, "return/address", address=RETURN_ADDRESS)  # the buyer's D3 from now
    nowhere = _agreed_without_address(api, "o_nowhere")
    addressed = agree_on_return(api)["id"]
    api.advance(days=9, hours=12)  # the buyer's reminder of the nowhere case's D3 is sent
    api.app.db.dispose()
    db = Database(str(api.app.db.engine.url.render_as_string(hide_password=False)))
    escalate = (("D3", "auto_escalate", "seller"),) * 2
    expire = (("D3", "expire", "buyer"),) * 2
    try:
        assert _d3_of(db, nowhere) == (*escalate, True)
        assert _d3_of(db, addressed) == (*expire, True)
        given_at = _status_since(db, late) + timedelta(days=3)

        command.downgrade(_alembic_config(db), "0008")
        assert _d3_of(db, nowhere) == (*expire, False)  # as before 0009
        # the code before 0009 counts D3 from the status's start: now when the address came
        assert _status_since(db, late) == given_at
        assert _d3_of(db, late)[0] == ("D3", "expire", "buyer")

        migrate(db)
        assert _d3_of(db, nowhere) == (*escalate, False)  # the seller's reminder is to come
        assert _d3_of(db, addressed) == (*expire, True)
    finally:
        migrate(db)
        db.dispose()


def _closed_as(db: Database) -> dict[str, object]:
    cl = t.case_lines.c
    with db.engine.connect() as conn:
        rows = conn.execute(select(cl.order_id, cl.closed_as).where(cl.line_id == "l1")).all()
    return {order_id: closed_as for order_id, closed_as in rows}


def test_0011_notes_on_their_lines_how_the_resolved_cases_ended(api: Api) -> None:
    """Cases resolved before 0011 close their lines as new ones do: a rejected line is
    refused to another case after it (X1), a withdrawn one is not; an open case's is NULL."""
    rejected = escalated_case(api)["id"]
    mediator(api, rejected, "decision", kind="reject", note="No evidence of damage.")
    api.put_order("o_2")
    buyer(api, ok(api.open_case("o_2"), 201)["id"], "withdraw")
    api.put_order("o_3")
    ok(api.open_case("o_3"), 201)
    api.app.db.dispose()  # nothing of the app's holds the tables while they change
    db = Database(str(api.app.db.engine.url.render_as_string(hide_password=False)))
    closed_as = {"o_1": "rejected", "o_2": "withdrawn", "o_3": None}
    try:
        assert _closed_as(db) == closed_as  # as the code writes it
        command.downgrade(_alembic_config(db), "0010")
        columns = {column["name"] for column in inspect(db.engine).get_columns("case_lines")}
        assert "closed_as" not in columns
        migrate(db)
        assert _closed_as(db) == closed_as  # as 0011 fills it in
        with db.engine.connect() as conn:
            claims = Repository(conn).order_with_claims("o_1")
        assert claims is not None and claims.closed_as == {"l1": ["rejected"]}
        assert is_up_to_date(db)
    finally:
        migrate(db)
        db.dispose()
