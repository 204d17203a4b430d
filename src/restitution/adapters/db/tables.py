"""The schema. Alembic migrations under `migrations/` create exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def utc_text(moment: datetime) -> str:
    """A time as SQLite stores it: in UTC, as naive text with microseconds (the text
    SQLAlchemy's own DATETIME writes)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use UTC")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite the two steps (UTC, then SQLAlchemy's text format) in one, with the C
    # `isoformat`/`fromisoformat`: the same text, at a fraction of the cost per value.

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else utc_text(value)

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)

        return process


def _ts(name: str, nullable: bool = True) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


orders = Table(
    "orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("buyer_id", String(200), nullable=False, index=True),
    Column("seller_id", String(200), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    _ts("placed_at", nullable=False),
    _ts("shipped_at"),
    _ts("delivered_at"),
    _ts("promised_delivery_by"),
    Column("shipping_amount", BigInteger, nullable=False),
    Column("payment_method", String(64), nullable=False),
    Column("payment_reference", String(200)),
    Column("seller_terms", JSON, nullable=False),
    Column("return_shipping_estimate", BigInteger),
    Column("buyer_country", String(2)),
    Column("lines", JSON, nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    # The worker's return-window reminders look for orders delivered in a recent span (0006).
    Index(
        "ix_orders_delivered",
        "delivered_at",
        postgresql_where=text("delivered_at IS NOT NULL"),
        sqlite_where=text("delivered_at IS NOT NULL"),
    ),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(200), ForeignKey("orders.order_id"), nullable=False, index=True),
    Column("buyer_id", String(200), nullable=False, index=True),
    Column("seller_id", String(200), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(40), nullable=False, index=True),
    Column("outcome", String(40)),
    Column("refundable_amount", BigInteger, nullable=False),
    Column("refund_granted_amount", BigInteger),
    Column("refunded_amount", BigInteger),
    Column("default_return_payer", String(10), nullable=False),
    Column("return_address", JSON),
    Column("holiday_country", String(2), nullable=False),
    Column("policy_id", String(100), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("agreed_offer_id", String(40)),
    _ts("seller_first_answer_at"),
    _ts("escalated_at"),
    Column("return_shipment", JSON),
    Column("replacement_shipment", JSON),
    Column("deadline", JSON),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("status_since", nullable=False),
    Column("version", Integer, nullable=False),
    # 0008: when a refund of the case last failed (mediators see the case from then on)
    _ts("refund_failed_at"),
)

case_lines = Table(
    "case_lines",
    metadata,
    Column("case_id", String(40), ForeignKey("cases.id"), primary_key=True),
    Column("line_id", String(200), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    # What this case may refund on this line, and what it was granted (split over its lines).
    Column("refundable_amount", BigInteger, nullable=False),
    Column("granted_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("is_open", Boolean, nullable=False),
    # The case's outcome once it is resolved (NULL before): eligibility reads it with the
    # order, as a rejected or expired case closes its lines for good.
    Column("closed_as", String(20)),
    # A line has at most one case that is not resolved.
    Index(
        "uq_case_lines_open_line",
        "order_id",
        "line_id",
        unique=True,
        sqlite_where=text("is_open"),
        postgresql_where=text("is_open"),
    ),
    Index("ix_case_lines_order_line", "order_id", "line_id"),
)

offers = Table(
    "offers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("by", String(10), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount", BigInteger),
    Column("return_required", Boolean, nullable=False),
    Column("return_shipping_paid_by", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    _ts("created_at", nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("actor_role", String(20), nullable=False),
    Column("actor_id", String(200)),
    _ts("at", nullable=False),
    Column("data", JSON, nullable=False),
    Column("clauses", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("case_id", "seq"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, index=True),
    Column("author_role", String(20), nullable=False),
    Column("author_id", String(200)),
    Column("body", Text, nullable=False),
    Column("attachments", JSON, nullable=False),
    _ts("created_at", nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_role", String(20), nullable=False),
    Column("owner_id", String(200)),
    Column("case_id", String(40), ForeignKey("cases.id"), index=True),
    Column("filename", String(255)),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    # Indexed: a file is deleted with the last row that refers to it (0010).
    Column("storage_key", String(200), nullable=False, index=True),
    _ts("created_at", nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    # One grant per case: the decision to refund; attempts execute it.
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(64), nullable=False),
    Column("payment_reference", String(200)),
    Column("status", String(20), nullable=False),
    _ts("expected_by", nullable=False),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    # 0003: return postage reimbursed on top of `amount` (S1), and gateway retries
    Column("postage_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    Column("last_error", Text),
    # 0008: the attempts made before the refund was last retried after failing: the next
    # `refund_max_attempts` count from there, while the keys go on numbering all of them
    Column("attempts_before_retry", Integer, nullable=False, server_default=text("0")),
    Index("ix_refunds_due", "status", "next_attempt_at"),
)

refund_attempts = Table(
    "refund_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("refund_id", String(40), ForeignKey("refunds.id"), nullable=False, index=True),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    Column("gateway", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("error", Text),
    _ts("created_at", nullable=False),
)

deadlines = Table(
    "deadlines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, index=True),
    Column("kind", String(4), nullable=False),
    Column("action", String(40), nullable=False),
    Column("party", String(20), nullable=False),
    Column("auto", Boolean, nullable=False),
    _ts("due_at", nullable=False),
    _ts("fired_at"),
    _ts("cleared_at"),
    _ts("reminded_at"),
    # A deadline whose firing failed waits before it is taken again (0007).
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    Column("last_error", Text),
    Index(
        "ix_deadlines_pending",
        "due_at",
        "id",  # the sweeper's order (0004)
        postgresql_where=text("fired_at IS NULL AND cleared_at IS NULL"),
        sqlite_where=text("fired_at IS NULL AND cleared_at IS NULL"),
    ),
    Index(
        "ix_deadlines_failing",
        "id",  # the few that failed to fire, counted on the console's overview (0007)
        postgresql_where=text("attempts > 0 AND fired_at IS NULL AND cleared_at IS NULL"),
        sqlite_where=text("attempts > 0 AND fired_at IS NULL AND cleared_at IS NULL"),
    ),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(250), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    _ts("created_at", nullable=False),
)

party_tokens = Table(
    "party_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("party_id", String(200), nullable=False),
    _ts("expires_at", nullable=False),
    _ts("created_at", nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", JSON, nullable=False),
    Column("secret", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False),
    _ts("created_at", nullable=False),
    Column("consecutive_failures", Integer, nullable=False, server_default=text("0")),
    _ts("disabled_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    _ts("created_at", nullable=False),
    _ts("delivered_at"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    # The rows still to dispatch, in the dispatcher's order (0005).
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("delivered_at IS NULL"),
        sqlite_where=text("delivered_at IS NULL"),
    ),
)

# --------------------------------------------------------------------------- messages out (0002)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # pending, succeeded, failed (gave up)
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    _ts("created_at", nullable=False),
    _ts("delivered_at"),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
)

parties = Table(
    "parties",
    metadata,
    Column("role", String(20), primary_key=True),
    Column("party_id", String(200), primary_key=True),
    Column("name", String(200)),
    Column("email", String(320)),
    Column("locale", String(35)),
    Column("time_zone", String(64)),
    _ts("updated_at", nullable=False),
)

emails = Table(
    "emails",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("party_id", String(200), nullable=False),
    Column("case_id", String(40)),
    Column("template", String(64), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("context", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # pending, sent, logged, failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    _ts("next_attempt_at"),
    Column("last_error", Text),
    _ts("created_at", nullable=False),
    _ts("sent_at"),
    Index("ix_emails_due", "status", "next_attempt_at"),
)

reminders = Table(
    "reminders",
    metadata,
    # One row per reminder ever sent; the key makes each one go out exactly once
    # ("deadline:<deadline id>", "window:<order id>:<line id>").
    Column("key", String(300), primary_key=True),
    Column("case_id", String(40)),
    Column("order_id", String(200)),
    Column("line_id", String(200)),
    Column("party_role", String(20), nullable=False),
    Column("party_id", String(200), nullable=False),
    _ts("due_at", nullable=False),
    _ts("sent_at", nullable=False),
)

# --------------------------------------------------------------------------- portal (0002)

mediator_accounts = Table(
    "mediator_accounts",
    metadata,
    Column("login", String(200), primary_key=True),
    Column("party_id", String(200), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    _ts("created_at", nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("party_id", String(200), nullable=False),
    Column("csrf_token", String(100), nullable=False),
    _ts("expires_at", nullable=False),
    _ts("created_at", nullable=False),
)
