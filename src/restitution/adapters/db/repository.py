"""Reads and writes inside one transaction (a `Database.transaction()` connection)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from restitution.adapters.db import tables as t
from restitution.adapters.db.codec import (
    case_from_rows,
    case_to_row,
    offer_to_row,
    order_from_row,
    order_to_row,
)
from restitution.adapters.db.engine import Database, KeyedRead, json_text, mark_outbox_written
from restitution.adapters.db.prepared import Prepared, all_together, run_together
from restitution.domain.cases import Case, Event
from restitution.domain.errors import Conflict, unknown_cursor
from restitution.domain.history import GENESIS_HASH, ChainedEvent, format_time, jsonable
from restitution.domain.money import allocate
from restitution.domain.orders import Order
from restitution.services.ports import CaseFilter, StoredEvent


def _last_event(column: Any) -> Any:
    e = t.events.c
    return (
        select(column)
        .where(e.case_id == t.cases.c.id)
        .order_by(e.seq.desc())
        .limit(1)
        .scalar_subquery()
    )


def _columns(table: Any, *, without: tuple[str, ...] = ()) -> list[str]:
    return [column.name for column in table.columns if column.name not in without]


# The write path's statements, compiled once per dialect and run on the driver (prepared.py).
_CASE_ID: Any = bindparam("case_id")
_GET_ORDER = Prepared(select(t.orders).where(t.orders.c.order_id == bindparam("order_id")))
_GET_ORDER_FOR_UPDATE = Prepared(
    select(t.orders).where(t.orders.c.order_id == bindparam("order_id")).with_for_update()
)
_GET_CASE = Prepared(select(t.cases).where(t.cases.c.id == _CASE_ID))
# The case with its last event's seq and hash, in one statement, for a case about to change.
_CASES_FOR_WRITE = select(
    t.cases,
    _last_event(t.events.c.seq).label("last_event_seq"),
    _last_event(t.events.c.hash).label("last_event_hash"),
)
_GET_CASE_FOR_WRITE = Prepared(_CASES_FOR_WRITE.where(t.cases.c.id == _CASE_ID))
# Reads of many rows by id (the sweeper's batches). On SQLite an IN list, built once with the
# ids a parameter expanded per call (bench/RESULTS.md, round 5). On PostgreSQL one array
# parameter, `= ANY(ids)`: a short text the driver converts once and the server parses once
# per batch, where 200 ids expanded cost ~90 µs per id of rendering and conversion (round 8).
_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_ID_ARRAY: Any = any_(bindparam("ids", type_=ARRAY(String)))


def _by_ids(column: Any, *, array: bool) -> Any:
    return column == _ID_ARRAY if array else column.in_(_IDS)


@dataclass(frozen=True)
class _ByIds:
    """The reads of many cases (and orders) by id, as one dialect runs them."""

    orders: Any
    cases: Any
    cases_for_write: Any
    lines: Any
    offers: Any

    @classmethod
    def build(cls, *, array: bool) -> _ByIds:
        wrap = Prepared if array else (lambda statement: statement)
        return cls(
            orders=wrap(select(t.orders).where(_by_ids(t.orders.c.order_id, array=array))),
            cases=wrap(select(t.cases).where(_by_ids(t.cases.c.id, array=array))),
            cases_for_write=wrap(_CASES_FOR_WRITE.where(_by_ids(t.cases.c.id, array=array))),
            lines=wrap(
                select(t.case_lines)
                .where(_by_ids(t.case_lines.c.case_id, array=array))
                .order_by(t.case_lines.c.case_id, t.case_lines.c.position)
            ),
            offers=wrap(
                select(t.offers)
                .where(_by_ids(t.offers.c.case_id, array=array))
                .order_by(t.offers.c.case_id, t.offers.c.position)
            ),
        )


_BY_IDS_SQLITE = _ByIds.build(array=False)
_BY_IDS_POSTGRES = _ByIds.build(array=True)
_CASE_LINES = Prepared(
    select(t.case_lines).where(t.case_lines.c.case_id == _CASE_ID).order_by(t.case_lines.c.position)
)
_CASE_OFFERS = Prepared(
    select(t.offers).where(t.offers.c.case_id == _CASE_ID).order_by(t.offers.c.position)
)
# The cases mediators see (`auth.can_see_case`): escalated, or with a refund that failed.
_SEEN_BY_MEDIATORS = or_(
    t.cases.c.escalated_at.is_not(None), t.cases.c.refund_failed_at.is_not(None)
)
# An order with what its cases claim, in one statement (one snapshot, no transaction needed):
# one row per case line on the order (none: one row of NULLs), with how its case ended, and
# whether mediators see a case on it (they may then see the order).
_ORDERS_WITH_CLAIMS = select(
    t.orders,
    t.case_lines.c.line_id.label("claim_line_id"),
    t.case_lines.c.granted_amount.label("claim_granted"),
    t.case_lines.c.is_open.label("claim_open"),
    t.case_lines.c.closed_as.label("claim_closed_as"),
    exists()
    .where(t.cases.c.order_id == t.orders.c.order_id, _SEEN_BY_MEDIATORS)
    .label("seen_by_mediators"),
).select_from(t.orders.outerjoin(t.case_lines, t.case_lines.c.order_id == t.orders.c.order_id))
_ORDER_WITH_CLAIMS = Prepared(
    _ORDERS_WITH_CLAIMS.where(t.orders.c.order_id == bindparam("order_id"))
)
# A case is opened on it: a PUT that would replace it waits (PostgreSQL; SQLite's writers
# take turns anyway).
_ORDER_WITH_CLAIMS_FOR_WRITE = Prepared(
    _ORDERS_WITH_CLAIMS.where(t.orders.c.order_id == bindparam("order_id")).with_for_update(
        read=True, of=t.orders
    )
)
# The server's eligibility reads: those of requests that arrive together, together (PostgreSQL).
_ORDER_WITH_CLAIMS_BY_KEY = KeyedRead(
    one=_ORDER_WITH_CLAIMS,
    param="order_id",
    many=Prepared(_ORDERS_WITH_CLAIMS.where(t.orders.c.order_id == _ID_ARRAY)),
    key="order_id",
)
_LOCK_ORDERS_POSTGRES = text(
    "SELECT order_id FROM orders WHERE order_id = ANY(:ids) ORDER BY order_id FOR UPDATE"
)
_ORDERS_WITH_CASES_POSTGRES = text("SELECT DISTINCT order_id FROM cases WHERE order_id = ANY(:ids)")
_ORDERS_WITH_CASES_SQLITE = text(
    "SELECT DISTINCT order_id FROM cases WHERE order_id IN (SELECT value FROM json_each(:ids))"
)
_INSERT_CASE = Prepared(insert(t.cases), columns=_columns(t.cases))
_INSERT_CASE_LINE = Prepared(insert(t.case_lines), columns=_columns(t.case_lines))
# What a case is opened with and keeps: who, which order, in which currency, since when. Left
# out of its UPDATE, as SQLite rewrites the entries of every index on a column the SET names,
# changed or not (four of the table's five indexes: the key, the order, the buyer, the seller).
_CASE_IDENTITY = ("id", "order_id", "buyer_id", "seller_id", "currency", "created_at")
_UPDATE_CASE = Prepared(
    update(t.cases).where(
        t.cases.c.id == bindparam("_case_id"), t.cases.c.version == bindparam("_read_version")
    ),
    columns=_columns(t.cases, without=_CASE_IDENTITY),
)
_INSERT_OFFER = Prepared(insert(t.offers), columns=_columns(t.offers))
_SET_OFFER_STATUS = Prepared(
    update(t.offers).where(t.offers.c.id == bindparam("offer_id")), columns=["status"]
)
_SET_LINE_GRANT = Prepared(
    update(t.case_lines).where(
        t.case_lines.c.case_id == _CASE_ID, t.case_lines.c.line_id == bindparam("_line_id")
    ),
    columns=["granted_amount", "is_open", "closed_as"],
)
_CLEAR_DEADLINES = Prepared(
    update(t.deadlines).where(
        t.deadlines.c.case_id == _CASE_ID,
        t.deadlines.c.fired_at.is_(None),
        t.deadlines.c.cleared_at.is_(None),
    ),
    columns=["cleared_at"],
)
_INSERT_DEADLINE = Prepared(
    insert(t.deadlines), columns=["case_id", "kind", "action", "party", "auto", "due_at"]
)
_pending_due = select(t.deadlines.c.id).where(
    t.deadlines.c.fired_at.is_(None),
    t.deadlines.c.cleared_at.is_(None),
    t.deadlines.c.auto.is_(True),
    t.deadlines.c.due_at <= bindparam("now"),
    # One whose firing failed waits out its back-off (`Repository.defer_deadline`).
    or_(t.deadlines.c.next_attempt_at.is_(None), t.deadlines.c.next_attempt_at <= bindparam("now")),
)
# The sweeper's order; on PostgreSQL concurrent sweepers skip the rows another one holds.
_next_due = _pending_due.order_by(t.deadlines.c.due_at, t.deadlines.c.id).limit(bindparam("limit"))


def _take(due: Any) -> Prepared:
    """Mark the deadlines `due` selects fired and return them, in one statement."""
    return Prepared(
        update(t.deadlines)
        .where(t.deadlines.c.id.in_(due))
        .values(fired_at=bindparam("now"))
        .returning(*t.deadlines.c)
    )


_TAKE_DUE_DEADLINES = _take(_next_due)
_TAKE_DUE_DEADLINES_SKIP_LOCKED = _take(_next_due.with_for_update(skip_locked=True))
_one_due = _pending_due.where(t.deadlines.c.id == bindparam("deadline_id"))
_TAKE_DEADLINE = _take(_one_due)
_TAKE_DEADLINE_SKIP_LOCKED = _take(_one_due.with_for_update(skip_locked=True))
_DEFER_DEADLINE = Prepared(
    update(t.deadlines)
    .where(
        t.deadlines.c.id == bindparam("deadline_id"),
        t.deadlines.c.fired_at.is_(None),
        # Not backing off already: another sweeper that failed on it meanwhile counted this
        # failure (between a failed attempt's rollback and its deferral, it is due).
        or_(
            t.deadlines.c.next_attempt_at.is_(None),
            t.deadlines.c.next_attempt_at <= bindparam("now"),
        ),
    )
    .values(
        attempts=t.deadlines.c.attempts + 1,
        next_attempt_at=bindparam("next_attempt_at"),
        last_error=bindparam("last_error"),
    )
)
_INSERT_EVENT = Prepared(insert(t.events), columns=_columns(t.events))
_INSERT_OUTBOX = Prepared(
    insert(t.outbox), columns=["event_id", "type", "payload", "created_at", "next_attempt_at"]
)
_GET_REFUND = Prepared(select(t.refunds).where(t.refunds.c.id == bindparam("refund_id")))
_INSERT_REFUND = Prepared(
    insert(t.refunds),
    columns=[
        "id",
        "case_id",
        "amount",
        "postage_amount",
        "next_attempt_at",
        "currency",
        "method",
        "payment_reference",
        "status",
        "attempts",
        "last_error",
        "expected_by",
        "created_at",
        "updated_at",
    ],
)
_INSERT_ATTEMPT = Prepared(
    insert(t.refund_attempts),
    columns=["id", "refund_id", "idempotency_key", "gateway", "status", "error", "created_at"],
)
_SET_REFUND_STATUS = Prepared(
    update(t.refunds).where(t.refunds.c.id == bindparam("refund_id")),
    columns=["status", "updated_at"],
)
# PostgreSQL, for the rest of a transaction: every row found by its key (`batched_writes`).
_PLAN_BY_KEYS = Prepared(
    text(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
        " set_config('enable_seqscan', 'off', true)"
    )
)
# What recording an action writes, in the order it writes it (keys before the rows that
# refer to them; a case's deadlines cleared before the case is written, and before its new
# one is inserted): the order in which `batched_writes` sends each statement's rows.
_BATCH_ORDER = (
    _CLEAR_DEADLINES,
    _UPDATE_CASE,
    _INSERT_OFFER,
    _SET_OFFER_STATUS,
    _SET_LINE_GRANT,
    _INSERT_DEADLINE,
    _INSERT_EVENT,
    _INSERT_REFUND,
    _INSERT_ATTEMPT,
    _INSERT_OUTBOX,
)


@dataclass(frozen=True)
class OrderClaims:
    """An order as its cases left it: per line, what they granted or refunded (the cap's
    used part), the lines with a case still open, and per line the outcomes of its resolved
    cases (a rejection or an expiry closes it for good); and whether mediators see one."""

    order: Order
    granted: dict[str, int]
    open_lines: set[str]
    closed_as: dict[str, list[str]]
    seen_by_mediators: bool


async def read_order_with_claims(db: Database, order_id: str) -> OrderClaims | None:
    """`Repository.order_with_claims`, without blocking the event loop; on PostgreSQL with
    the same reads of other requests on the loop (`Database.read_by_key`)."""
    return _order_claims(await db.read_by_key(_ORDER_WITH_CLAIMS_BY_KEY, order_id))


def _identity(case: Case) -> tuple[object, ...]:
    return (case.id, case.order_id, case.buyer_id, case.seller_id, case.currency, case.created_at)


def _order_claims(rows: Sequence[Any]) -> OrderClaims | None:
    if not rows:
        return None
    claims = OrderClaims(order_from_row(rows[0]), {}, set(), {}, bool(rows[0].seen_by_mediators))
    for row in rows:
        if row.claim_line_id is not None:
            line_id = row.claim_line_id
            claims.granted[line_id] = claims.granted.get(line_id, 0) + row.claim_granted
            if row.claim_open:
                claims.open_lines.add(line_id)
            elif row.claim_closed_as is not None:
                claims.closed_as.setdefault(line_id, []).append(row.claim_closed_as)
    return claims


def after_cursor(conn: Connection, table: Any, kind: str, cursor_id: str, *visible: Any) -> Any:
    """The condition for the rows after `cursor_id` in a list newest first (`created_at`,
    then `id`, descending): a row of `table` among those `visible`, else `invalid_cursor`."""
    c = table.c
    cursor = conn.execute(select(c.created_at, c.id).where(c.id == cursor_id, *visible)).first()
    if cursor is None:
        raise unknown_cursor(kind, cursor_id)
    return or_(
        c.created_at < cursor.created_at,
        and_(c.created_at == cursor.created_at, c.id < cursor.id),
    )


def _case_visibility(flt: CaseFilter, visible_to: tuple[str, str] | None) -> list[Any]:
    """Which cases the caller may see: `visible_to` = (column, party id) of one party's
    only; a mediator's (`flt.for_mediators`), those mediators see."""
    c = t.cases.c
    conditions: list[Any] = []
    if flt.for_mediators:
        conditions.append(_SEEN_BY_MEDIATORS)
    if visible_to is not None:
        conditions.append(getattr(c, visible_to[0]) == visible_to[1])
    return conditions


def _case_conditions(flt: CaseFilter, visible_to: tuple[str, str] | None) -> list[Any]:
    """The cases `flt` asks for, among those the caller may see (`_case_visibility`)."""
    c = t.cases.c
    conditions = _case_visibility(flt, visible_to)
    for column, value in (
        (c.status, flt.status),
        (c.order_id, flt.order_id),
        (c.buyer_id, flt.buyer_id),
        (c.seller_id, flt.seller_id),
        (c.reason, flt.reason),
    ):
        if value is not None:
            conditions.append(column == value)
    return conditions


@dataclass(frozen=True)
class _Tail:
    """A case's last event as this repository knows it, valid while the case's stored
    version is `version` (every event is written with a version bump of its case)."""

    version: int
    seq: int
    hash: str


class Repository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.is_postgres = conn.dialect.name == "postgresql"
        # What this transaction already knows, so writing an action does not read it again:
        # each case's last event, and each case's lines' refundable amounts (never changed
        # after the case is opened), in position order.
        self._tails: dict[str, _Tail] = {}
        self._refundables: dict[str, list[tuple[str, int]]] = {}
        self._orders: dict[str, Order] = {}  # read ahead by `load_orders`
        # While `batched_writes` collects: each statement's rows, sent when it ends.
        self._batch: dict[Prepared, list[dict[str, Any]]] | None = None

    def _write(self, statement: Prepared, params: dict[str, Any]) -> None:
        if self._batch is None:
            statement.run(self.conn, params)
        else:
            self._batch[statement].append(params)

    @contextmanager
    def batched_writes(self) -> Iterator[None]:
        """Collect what the actions recorded inside write, and send it when they are done
        (inside another batch: part of that one). The cases' updates first, at once (after
        their old deadlines are cleared: the order of locks the sweeper takes them in): the
        optimistic check holds for the batch as a whole, and when any case changed since it
        was read, Conflict, and the caller's transaction is rolled back. Then the rest, in
        the order one action writes it (`_BATCH_ORDER`), together (`run_together`: one
        round trip on PostgreSQL). Each case may change once, and only cases read for
        writing (their last events known)."""
        if self._batch is not None:
            yield
            return
        batch = self._batch = {statement: [] for statement in _BATCH_ORDER}
        try:
            yield
        finally:
            self._batch = None
        updates = batch.pop(_UPDATE_CASE)
        if len({row["_case_id"] for row in updates}) != len(updates):
            raise ValueError("a batch of writes changes each case at most once")
        # The cases' old deadlines are cleared before the cases are written: a sweeper holds
        # the deadline rows it took while it writes their cases, so a writer holding a case
        # while it waited for the case's deadline row would deadlock with it.
        clears = batch.pop(_CLEAR_DEADLINES)
        written = run_together(self.conn, [(_CLEAR_DEADLINES, clears), (_UPDATE_CASE, updates)])
        if updates and written[1] != len(updates):
            raise Conflict(
                "concurrent_update", "the case changed meanwhile; reload it and try again"
            )
        run_together(self.conn, [(statement, rows) for statement, rows in batch.items() if rows])

    def plan_by_keys(self) -> None:
        """For the rest of this transaction, on PostgreSQL, find every row by its key,
        whatever the tables' statistics say: for the sweeper's batches, which read and write
        hundreds of rows, each by its key. Each row's foreign keys are checked with a plan
        PostgreSQL keeps per session, made once; made while `refunds` was small (and left so
        until an ANALYZE), it scanned the whole table for every refund attempt (round 3):
        planned for each check. And a batch's ids matched against a table (the deadlines it
        takes, `= ANY(ids)` reads, `UPDATE ... FROM json_to_recordset(...)` estimated at 100
        rows) were planned as scans of the whole table, once per batch for each of cases,
        lines, offers and deadlines, while the planner thought them small (round 8)."""
        if self.is_postgres:
            _PLAN_BY_KEYS.run(self.conn)

    # ------------------------------------------------------------------ orders

    def get_order(self, order_id: str, *, for_update: bool = False) -> Order | None:
        """The order; `for_update`: locked until the transaction ends (PostgreSQL)."""
        order = None if for_update else self._orders.get(order_id)
        if order is not None:
            return order
        read = _GET_ORDER_FOR_UPDATE if for_update else _GET_ORDER
        row = read.first(self.conn, {"order_id": order_id})
        return order_from_row(row) if row else None

    def get_orders(self, order_ids: Collection[str]) -> list[Order]:
        """Those of the orders that exist, read in one query (not kept: `load_orders`)."""
        if not order_ids:
            return []
        ids = {"ids": list(order_ids)}
        if self.is_postgres:
            rows = _BY_IDS_POSTGRES.orders.all(self.conn, ids)
        else:
            rows = self.conn.execute(_BY_IDS_SQLITE.orders, ids)
        return [order_from_row(row) for row in rows]

    def lock_orders(self, order_ids: Collection[str]) -> None:
        """Lock those of the orders that exist until the transaction ends, in the order of
        their ids (two importers never wait on each other in a circle); PostgreSQL only:
        SQLite's writers take turns."""
        if self.is_postgres and order_ids:
            self.conn.execute(_LOCK_ORDERS_POSTGRES, {"ids": list(order_ids)})

    def order_has_cases(self, order_id: str) -> bool:
        found = self.conn.execute(
            select(t.cases.c.id).where(t.cases.c.order_id == order_id).limit(1)
        ).first()
        return found is not None

    def orders_with_cases(self, order_ids: Collection[str]) -> list[str]:
        """Those of `order_ids` that have a case: the ids sent as one parameter (an import
        asks for 10,000 at a time, which as an IN list cost more than the query)."""
        if not order_ids:
            return []
        ids: list[str] | str = list(order_ids)
        if self.is_postgres:
            query = _ORDERS_WITH_CASES_POSTGRES
        else:
            query, ids = _ORDERS_WITH_CASES_SQLITE, json_text(ids)
        return list(self.conn.execute(query, {"ids": ids}).scalars())

    def load_orders(self, order_ids: Collection[str]) -> None:
        """Read these orders in one query; `get_order` then answers from memory."""
        for order in self.get_orders(order_ids):
            self._orders[order.order_id] = order

    def save_order(self, order: Order, now: datetime) -> bool:
        """Insert or replace; True when the order is new."""
        self._orders.pop(order.order_id, None)
        values = order_to_row(order)
        updated = self.conn.execute(
            update(t.orders)
            .where(t.orders.c.order_id == order.order_id)
            .values(**values, updated_at=now)
        )
        if updated.rowcount:
            return False
        self.conn.execute(insert(t.orders).values(**values, created_at=now, updated_at=now))
        return True

    # ------------------------------------------------------------------ cases

    def get_case(self, case_id: str, *, for_write: bool = False) -> Case | None:
        """The case; `for_write` also reads its last event in the same statement, for the
        action about to be recorded (`append_event` then needs no query of its own)."""
        key = {"case_id": case_id}
        head = _GET_CASE_FOR_WRITE if for_write else _GET_CASE
        found, lines, offers = all_together(
            self.conn, [(head, key), (_CASE_LINES, key), (_CASE_OFFERS, key)]
        )
        if not found:
            return None
        row = found[0]
        if for_write:
            self._know_tail(row)
        self._refundables[case_id] = [(line.line_id, line.refundable_amount) for line in lines]
        return case_from_rows(row, lines, offers)

    def _know_tail(self, row: Any) -> None:
        """Remember the last event of a case read with `_CASES_FOR_WRITE`."""
        if row.last_event_seq is None:
            self._tails[row.id] = _Tail(row.version, 0, GENESIS_HASH)
        else:
            self._tails[row.id] = _Tail(row.version, row.last_event_seq, row.last_event_hash)

    def list_cases(
        self,
        flt: CaseFilter,
        *,
        limit: int,
        starting_after: str | None = None,
        visible_to: tuple[str, str] | None = None,
    ) -> tuple[list[Case], bool]:
        """Newest first; `visible_to` = (column, party id) narrows to one party's cases."""
        c = t.cases.c
        visible = _case_visibility(flt, visible_to)
        conditions = _case_conditions(flt, visible_to)
        if starting_after is not None:
            # A cursor the caller may not see is as unknown as one that does not exist:
            # paging after it would tell that it exists, and when it was opened. Filters do
            # not apply (the last case of a page may have changed status since). An unknown
            # cursor is refused: ignored, it gave the first page again, and again.
            conditions.append(after_cursor(self.conn, t.cases, "case", starting_after, *visible))
        ids = (
            self.conn.execute(
                select(c.id)
                .where(*conditions)
                .order_by(c.created_at.desc(), c.id.desc())
                .limit(limit + 1)
            )
            .scalars()
            .all()
        )
        return self.get_cases(ids[:limit]), len(ids) > limit

    def cases_by_deadline(
        self, flt: CaseFilter, *, limit: int, visible_to: tuple[str, str] | None = None
    ) -> list[Case]:
        """The first `limit` cases in a queue's order: the soonest deadline first, then the
        cases waiting on nobody, the latest changed first. Ordered here, over all the cases
        the filter finds: the newest `limit` of them, ordered, would leave out the cases
        waiting longest. `visible_to` as for `list_cases`."""
        c, d = t.cases.c, t.deadlines.c
        due = (
            select(func.min(d.due_at))
            .where(d.case_id == c.id, d.fired_at.is_(None), d.cleared_at.is_(None))
            .scalar_subquery()
        )
        ids = (
            self.conn.execute(
                select(c.id)
                .where(*_case_conditions(flt, visible_to))
                .order_by(due.is_(None), due, c.updated_at.desc(), c.id.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
        return self.get_cases(ids)

    def get_cases(self, case_ids: Sequence[str], *, for_write: bool = False) -> list[Case]:
        """Several cases in `case_ids` order, in three queries whatever their number (one
        round trip on PostgreSQL); `for_write` as for `get_case`."""
        if not case_ids:
            return []
        ids = {"ids": list(case_ids)}
        reads = _BY_IDS_POSTGRES if self.is_postgres else _BY_IDS_SQLITE
        head = reads.cases_for_write if for_write else reads.cases
        if self.is_postgres:
            found, all_lines, all_offers = all_together(
                self.conn, [(head, ids), (reads.lines, ids), (reads.offers, ids)]
            )
        else:
            found = list(self.conn.execute(head, ids))
            all_lines = list(self.conn.execute(reads.lines, ids))
            all_offers = list(self.conn.execute(reads.offers, ids))
        rows = {row.id: row for row in found}
        lines: dict[str, list[Any]] = {case_id: [] for case_id in rows}
        for line in all_lines:
            if line.case_id in lines:
                lines[line.case_id].append(line)
        offers: dict[str, list[Any]] = {case_id: [] for case_id in rows}
        for offer in all_offers:
            if offer.case_id in offers:
                offers[offer.case_id].append(offer)
        if for_write:
            for case_id, row in rows.items():
                self._know_tail(row)
                self._refundables[case_id] = [
                    (line.line_id, line.refundable_amount) for line in lines[case_id]
                ]
        return [
            case_from_rows(rows[case_id], lines[case_id], offers[case_id])
            for case_id in case_ids
            if case_id in rows
        ]

    def case_ids_newest_first(self, *, since: datetime | None, limit: int | None) -> list[str]:
        """Every case's id (opened at or after `since`), newest first, at most `limit`."""
        c = t.cases.c
        query = select(c.id).order_by(c.created_at.desc(), c.id.desc())
        if since is not None:
            query = query.where(c.created_at >= since)
        if limit is not None:
            query = query.limit(limit)
        return list(self.conn.execute(query).scalars())

    def line_grants(self, order_ids: Collection[str]) -> list[Any]:
        """Every case line of these orders, with its case's opening: `order_id`, `line_id`,
        `case_id`, `created_at`, `granted_amount` (what the case granted or refunded on it)
        and `closed_as` (the case's outcome, once resolved)."""
        if not order_ids:
            return []
        lines, cases = t.case_lines.c, t.cases.c
        return list(
            self.conn.execute(
                select(
                    lines.order_id,
                    lines.line_id,
                    lines.case_id,
                    cases.created_at,
                    lines.granted_amount,
                    lines.closed_as,
                )
                .select_from(t.case_lines.join(t.cases, t.cases.c.id == lines.case_id))
                .where(lines.order_id.in_(list(order_ids)))
            )
        )

    def order_with_claims(self, order_id: str, *, for_write: bool = False) -> OrderClaims | None:
        """The order, what its cases claim per line, and whether mediators see one, read
        in one statement (so outside a transaction too: `Database.reading()`); `for_write`:
        the order locked against being replaced until the transaction ends (PostgreSQL)."""
        read = _ORDER_WITH_CLAIMS_FOR_WRITE if for_write else _ORDER_WITH_CLAIMS
        return _order_claims(read.all(self.conn, {"order_id": order_id}))

    def insert_case(self, case: Case, line_refundables: dict[str, int]) -> None:
        try:
            lines = [
                {
                    "case_id": case.id,
                    "line_id": line.line_id,
                    "order_id": case.order_id,
                    "quantity": line.quantity,
                    "position": position,
                    "refundable_amount": line_refundables[line.line_id],
                    "granted_amount": 0,
                    "is_open": True,
                    "closed_as": None,
                }
                for position, line in enumerate(case.lines)
            ]
            run_together(
                self.conn, [(_INSERT_CASE, [case_to_row(case)]), (_INSERT_CASE_LINE, lines)]
            )
        except self.conn.dialect.dbapi.IntegrityError as exc:  # type: ignore[union-attr]
            raise Conflict(
                "case_already_open", "one of these lines already has a case that is not resolved"
            ) from exc
        self._tails[case.id] = _Tail(case.version, 0, GENESIS_HASH)
        self._refundables[case.id] = [
            (line.line_id, line_refundables[line.line_id]) for line in case.lines
        ]
        self._save_offers(case, {})
        self._sync_deadline(None, case)

    def update_case(self, before: Case, after: Case) -> None:
        """Write `after` if nobody changed the case since `before` was read (optimistic lock,
        checked when the batch is written: `batched_writes`)."""
        assert self._batch is not None, "a case is updated in a batch of writes"
        if _identity(after) != _identity(before):
            raise ValueError(f"case {before.id}: {_CASE_IDENTITY} are not updated")
        params = {**case_to_row(after), "_case_id": before.id, "_read_version": before.version}
        self._batch[_UPDATE_CASE].append(params)
        tail = self._tails.pop(before.id, None)
        if tail is not None and tail.version == before.version:
            # Nobody wrote the case since `tail` was known, so nobody wrote an event either.
            self._tails[before.id] = _Tail(after.version, tail.seq, tail.hash)
        self._save_offers(after, {offer.id: offer.status for offer in before.offers})
        if after.refund_granted != before.refund_granted or after.is_resolved:
            self._sync_lines(after)
        self._sync_deadline(before, after)

    def _save_offers(self, case: Case, existing: dict[str, str]) -> None:
        """Insert new offers; update the status of those whose status changed.

        `existing` maps the offers already stored to their stored status.
        """
        for position, offer in enumerate(case.offers):
            stored_status = existing.get(offer.id)
            if stored_status is None:
                self._write(_INSERT_OFFER, offer_to_row(case.id, position, offer))
            elif stored_status != offer.status:
                self._write(_SET_OFFER_STATUS, {"offer_id": offer.id, "status": offer.status})

    def _sync_lines(self, case: Case) -> None:
        """Split the case's grant over its lines by what each may refund; free resolved lines,
        noting how their case ended."""
        lines = self._refundables.get(case.id)
        if lines is None:
            lines = [
                (row.line_id, row.refundable_amount)
                for row in _CASE_LINES.all(self.conn, {"case_id": case.id})
            ]
            self._refundables[case.id] = lines
        granted = case.refunded or case.refund_granted
        used = case.outcome not in ("withdrawn", "rejected", "expired", "replaced")
        total = granted.amount if granted is not None and used else 0
        parts = allocate(total, [refundable for _, refundable in lines])
        for (line_id, _), part in zip(lines, parts, strict=True):
            self._write(
                _SET_LINE_GRANT,
                {
                    "case_id": case.id,
                    "_line_id": line_id,
                    "granted_amount": part,
                    "is_open": not case.is_resolved,
                    "closed_as": case.outcome if case.is_resolved else None,
                },
            )

    def _sync_deadline(self, before: Case | None, after: Case) -> None:
        old = before.deadline if before else None
        if old == after.deadline:
            return
        if old is not None:
            self._write(_CLEAR_DEADLINES, {"case_id": after.id, "cleared_at": after.updated_at})
        new = after.deadline
        if new is not None:
            self._write(
                _INSERT_DEADLINE,
                {
                    "case_id": after.id,
                    "kind": new.kind,
                    "action": new.action,
                    "party": new.party,
                    "auto": new.auto,
                    "due_at": new.due_at,
                },
            )

    # ------------------------------------------------------------------ deadlines

    def take_due_deadlines(self, now: datetime, limit: int) -> list[Any]:
        """Up to `limit` deadlines due by `now`, the earliest, marked fired; in the order
        they fell due."""
        query = _TAKE_DUE_DEADLINES_SKIP_LOCKED if self.is_postgres else _TAKE_DUE_DEADLINES
        taken = query.all(self.conn, {"now": now, "limit": limit})
        return sorted(taken, key=lambda row: (row.due_at, row.id))

    def take_deadline(self, deadline_id: int, now: datetime) -> Any:
        """That deadline, marked fired, if it is due and nobody fired it; else None."""
        query = _TAKE_DEADLINE_SKIP_LOCKED if self.is_postgres else _TAKE_DEADLINE
        return query.first(self.conn, {"deadline_id": deadline_id, "now": now})

    def defer_deadline(
        self, deadline_id: int, now: datetime, next_attempt_at: datetime, error: str
    ) -> bool:
        """A deadline that failed to fire at `now`: one more attempt counted, not taken again
        before `next_attempt_at`, its error kept for the operator. False when it fired or
        was deferred meanwhile (nothing changed)."""
        return (
            _DEFER_DEADLINE.run(
                self.conn,
                {
                    "deadline_id": deadline_id,
                    "now": now,
                    "next_attempt_at": next_attempt_at,
                    "last_error": error,
                },
            )
            == 1
        )

    # ------------------------------------------------------------------ events

    def append_event(self, case_id: str, event_id: str, event: Event) -> StoredEvent:
        tail = self._tails[case_id]  # the case was read for writing, or inserted
        seq, prev_hash = tail.seq, tail.hash
        chained = ChainedEvent(
            id=event_id,
            case_id=case_id,
            seq=seq + 1,
            type=event.type,
            actor_role=event.actor.role,
            actor_id=event.actor.id,
            at=format_time(event.at),
            data=jsonable(event.data),
            clauses=list(event.clauses),
            prev_hash=prev_hash,
        )
        digest = chained.compute_hash()
        self._write(
            _INSERT_EVENT,
            {
                "id": event_id,
                "case_id": case_id,
                "seq": chained.seq,
                "type": chained.type,
                "actor_role": chained.actor_role,
                "actor_id": chained.actor_id,
                "at": event.at,
                "data": chained.data,
                "clauses": chained.clauses,
                "prev_hash": chained.prev_hash,
                "hash": digest,
            },
        )
        self._tails[case_id] = _Tail(tail.version, chained.seq, digest)
        return StoredEvent(chained, digest)

    def case_events(self, case_id: str) -> list[StoredEvent]:
        rows = self.conn.execute(
            select(t.events).where(t.events.c.case_id == case_id).order_by(t.events.c.seq)
        ).all()
        return [
            StoredEvent(
                ChainedEvent(
                    id=row.id,
                    case_id=row.case_id,
                    seq=row.seq,
                    type=row.type,
                    actor_role=row.actor_role,
                    actor_id=row.actor_id,
                    at=format_time(row.at),
                    data=row.data,
                    clauses=list(row.clauses),
                    prev_hash=row.prev_hash,
                ),
                row.hash,
            )
            for row in rows
        ]

    def case_ids_with_events(self) -> list[str]:
        return list(
            self.conn.execute(
                select(t.events.c.case_id).distinct().order_by(t.events.c.case_id)
            ).scalars()
        )

    def add_outbox(
        self, event_id: str, event_type: str, payload: dict[str, Any], now: datetime
    ) -> None:
        self.add_outbox_rows([(event_id, event_type, payload, now)])

    def add_outbox_rows(self, rows: Sequence[tuple[str, str, dict[str, Any], datetime]]) -> None:
        """Outbox rows (event id, type, payload, time), in order, in one statement."""
        values = [
            {
                "event_id": event_id,
                "type": event_type,
                "payload": payload,
                "created_at": now,
                "next_attempt_at": now,
            }
            for event_id, event_type, payload, now in rows
        ]
        mark_outbox_written(self.conn)
        if self._batch is None:
            _INSERT_OUTBOX.run_many(self.conn, values)
        else:
            self._batch[_INSERT_OUTBOX] += values

    # ------------------------------------------------------------------ refunds

    def insert_refund(self, values: dict[str, Any]) -> None:
        self._write(_INSERT_REFUND, values)

    def get_refund(self, refund_id: str) -> Any:
        return _GET_REFUND.first(self.conn, {"refund_id": refund_id})

    def list_refunds(
        self,
        *,
        case_id: str | None = None,
        party: tuple[str, str] | None = None,
        mediators: bool = False,
        limit: int,
        after: str | None,
    ) -> tuple[list[Any], bool]:
        """Refunds newest first: of one case, of a (role, party id)'s cases, of the cases the
        mediators see, or (none of those given) all. The cases are chosen in the statement,
        not sent as a list of ids: a big seller's would pass SQLite's limit of bound
        parameters."""
        r, c = t.refunds.c, t.cases.c
        conditions: list[Any] = []
        if case_id is not None:
            conditions.append(r.case_id == case_id)
        if party is not None:
            role, party_id = party
            owner = {"buyer": c.buyer_id, "seller": c.seller_id}[role]
            conditions.append(r.case_id.in_(select(c.id).where(owner == party_id)))
        if mediators:
            conditions.append(r.case_id.in_(select(c.id).where(_SEEN_BY_MEDIATORS)))
        if after is not None:
            conditions.append(r.id < after)
        rows = self.conn.execute(
            select(t.refunds).where(*conditions).order_by(r.id.desc()).limit(limit + 1)
        ).all()
        return list(rows[:limit]), len(rows) > limit

    def set_refund_status(self, refund_id: str, status: str, now: datetime) -> None:
        _SET_REFUND_STATUS.run(
            self.conn, {"refund_id": refund_id, "status": status, "updated_at": now}
        )

    def insert_attempt(self, values: dict[str, Any]) -> None:
        """Insert a gateway attempt whose idempotency key is new (a first attempt)."""
        self._write(_INSERT_ATTEMPT, values)

    def record_attempt(self, values: dict[str, Any]) -> bool:
        """Insert a gateway attempt; False when its idempotency key was already used."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(t.refund_attempts), values)
        except IntegrityError:
            return False
        return True

    # ------------------------------------------------------------------ attachments

    def insert_attachment(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(t.attachments), values)

    def get_attachment(self, attachment_id: str) -> Any:
        return self.conn.execute(
            select(t.attachments).where(t.attachments.c.id == attachment_id)
        ).first()

    def link_attachments(self, attachment_ids: Collection[str], case_id: str) -> int:
        """Put on the case those attachments not on one yet; returns how many it took (one
        deleted meanwhile as unused is not among them)."""
        return self.conn.execute(
            update(t.attachments)
            .where(t.attachments.c.id.in_(attachment_ids), t.attachments.c.case_id.is_(None))
            .values(case_id=case_id)
        ).rowcount

    def any_unused_attachment(self, cutoff: datetime) -> bool:
        """Whether some attachment made before `cutoff` is used by no case or message."""
        a = t.attachments.c
        unused = select(a.id).where(a.case_id.is_(None), a.created_at < cutoff)
        return self.conn.execute(select(exists(unused))).scalar_one()

    def delete_unused_attachments(self, cutoff: datetime, limit: int) -> list[str]:
        """Delete up to `limit` attachments made before `cutoff` that no case or message
        uses, the oldest first; returns their storage keys. The DELETE itself asks again
        whether each is unused: one a case or message took meanwhile is kept. On PostgreSQL,
        rows another transaction holds are skipped (another worker's, or one being taken)."""
        a = t.attachments.c
        unused = (a.case_id.is_(None), a.created_at < cutoff)
        oldest = select(a.id).where(*unused).order_by(a.created_at, a.id).limit(limit)
        if self.conn.dialect.name == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        # Two statements: as a subquery of the DELETE, PostgreSQL may run the SELECT again
        # for each row, and each run then takes the next rows (those before are deleted).
        ids = list(self.conn.execute(oldest).scalars())
        if not ids:
            return []
        return list(
            self.conn.execute(
                delete(t.attachments).where(a.id.in_(ids), *unused).returning(a.storage_key)
            ).scalars()
        )

    def storage_keys_in_use(self, keys: Collection[str]) -> set[str]:
        """Those of `keys` that some attachment row refers to."""
        a = t.attachments.c
        return set(
            self.conn.execute(select(a.storage_key).where(a.storage_key.in_(keys))).scalars()
        )

    # ------------------------------------------------------------------ messages

    def insert_message(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(t.messages), values)
