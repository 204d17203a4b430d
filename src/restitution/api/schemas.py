"""Request bodies of the public contract (API.md). Integers are strict: "1000" and 10.5 fail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from restitution.domain.cases import STATUSES
from restitution.domain.orders import Address
from restitution.domain.policy import REASONS

MAX_AMOUNT = 10**15  # minor units; sums of a few stay well inside a 64-bit column
# Windows and deadlines are added to the times a request gives: keep them far from the ends
# of what a datetime can hold, so that no date arithmetic can overflow.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _within_calendar(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("the time must be between 1970 and 9000")
    return moment


MAX_TEXT = 10_000  # characters of free text: a description, a message, a reason, a note
MAX_SHIPPING_TEXT = 100  # a carrier, a tracking number
MAX_URL = 2000
MAX_ADDRESS_TEXT = 500  # a name, a street line, a city
MAX_POSTAL_CODE = 40

Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=200)]
ShortText = Annotated[StrictStr, Field(max_length=MAX_ADDRESS_TEXT)]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
Moment = Annotated[AwareDatetime, AfterValidator(_within_calendar)]
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
Country = Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$")]
Reason = Literal[REASONS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
Party = Literal["buyer", "seller"]
ActingAs = Literal["buyer", "seller", "mediator"]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        """PostgreSQL cannot store NUL in text: refuse it on every backend alike."""
        # Runs for every field of every body: kept to the cheapest checks (bench/RESULTS.md).
        kind = value.__class__
        if kind is str:
            if "\x00" in value:
                raise ValueError("text must not contain NUL characters")
        elif kind is list:
            for text in value:
                if text.__class__ is str and "\x00" in text:
                    raise ValueError("text must not contain NUL characters")
        return value


class MoneyIn(Body):
    amount: Amount
    currency: Currency


class PartyTokenIn(Body):
    role: Literal["buyer", "seller", "mediator"]
    party_id: Id
    ttl_seconds: StrictInt | None = None


class AddressIn(Body):
    name: ShortText
    line1: ShortText
    line2: ShortText | None = None
    city: ShortText
    postal_code: Annotated[StrictStr, Field(max_length=MAX_POSTAL_CODE)]
    country: Country

    def to_address(self) -> Address:
        return Address(self.name, self.line1, self.city, self.postal_code, self.country, self.line2)


class SellerTermsIn(Body):
    free_return_shipping: StrictBool = False
    accepts_change_of_mind: StrictBool = False
    return_address: AddressIn | None = None


class PaymentIn(Body):
    method: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    reference: ShortText | None = None


class OrderLineIn(Body):
    line_id: Id
    sku: ShortText = ""
    title: ShortText = ""
    category: Annotated[StrictStr, Field(max_length=200)] = ""
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    unit_amount: Amount
    custom_made: StrictBool = False


LocaleTag = Annotated[
    StrictStr, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
]


class PartyContactIn(Body):
    """Where and how to write to a buyer or seller (kept per party, for e-mail)."""

    email: Annotated[StrictStr, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    locale: LocaleTag | None = None
    name: Annotated[StrictStr, Field(max_length=200)] | None = None
    time_zone: Annotated[StrictStr, Field(max_length=64)] | None = None


class OrderIn(Body):
    buyer_id: Id
    seller_id: Id
    currency: Currency
    placed_at: Moment
    shipped_at: Moment | None = None
    delivered_at: Moment | None = None
    promised_delivery_by: Moment | None = None
    shipping_amount: Amount = 0
    payment: PaymentIn
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]
    seller_terms: SellerTermsIn = SellerTermsIn()
    return_shipping_estimate: Amount | None = None
    buyer_country: Country | None = None
    buyer: PartyContactIn | None = None
    seller: PartyContactIn | None = None


class OfferIn(Body):
    kind: Literal["refund", "replacement"]
    amount: MoneyIn | None = None
    return_required: StrictBool = False
    return_shipping_paid_by: Party | None = None


class CaseLineIn(Body):
    line_id: Id
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None


class CaseOpenIn(Body):
    order_id: Id
    lines: Annotated[list[CaseLineIn], Field(min_length=1, max_length=500)]
    reason: Reason
    description: Text = ""
    request: OfferIn
    attachments: Annotated[list[Id], Field(max_length=50)] = []


class ActionIn(Body):
    """Fields every action accepts: the operator may say which party it acts for."""

    acting_as: ActingAs | None = None


class OfferActionIn(OfferIn, ActionIn):
    pass


class ReasonIn(ActionIn):
    reason: Text = ""


class MessageIn(ActionIn):
    body: Text = ""
    attachments: Annotated[list[Id], Field(max_length=50)] = []


class DecisionIn(ActionIn):
    kind: Literal["refund", "replacement", "reject"]
    amount: MoneyIn | None = None
    return_required: StrictBool = False
    return_shipping_paid_by: Party | None = None
    note: Text = ""


class LabelIn(ActionIn):
    carrier: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SHIPPING_TEXT)]
    label_url: Annotated[StrictStr, Field(min_length=1, max_length=MAX_URL, pattern=r"^https?://")]


class ReturnAddressIn(ActionIn):
    address: AddressIn


class ShipmentIn(ActionIn):
    carrier: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SHIPPING_TEXT)]
    tracking_number: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SHIPPING_TEXT)]
    postage_paid: MoneyIn | None = None


class InspectionIn(ActionIn):
    passed: StrictBool
    note: Text = ""
    attachments: Annotated[list[Id], Field(max_length=50)] = []


class RefundFailedIn(Body):
    reason: Text = ""


class WebhookEndpointIn(Body):
    url: Annotated[StrictStr, Field(min_length=1, max_length=2000)]
    events: Annotated[
        list[Annotated[StrictStr, Field(max_length=100)]], Field(min_length=1, max_length=100)
    ]


class TestClockIn(Body):
    __test__ = False

    advance_seconds: Annotated[StrictInt, Field(ge=0, le=10 * 365 * 86400)] | None = None
    now: Moment | None = None
