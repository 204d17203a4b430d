"""Everything a use case needs, built once at start-up and handed to the routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from restitution.adapters.db.engine import Database
from restitution.domain.cases import Context
from restitution.domain.policy import Policy
from restitution.services.clock import Clock
from restitution.services.ids import new_id
from restitution.services.ports import EvidenceStore, Mailer, RefundGateway
from restitution.settings import Settings


@dataclass
class App:
    db: Database
    clock: Clock
    policy: Policy
    settings: Settings
    storage: EvidenceStore
    new_id: Callable[[str], str] = field(default=new_id)
    # None: the marketplace executes refunds itself (`operator`) / e-mails go to the log.
    refund_gateway: RefundGateway | None = None
    mailer: Mailer | None = None

    def context(self, now: datetime | None = None) -> Context:
        return Context(now=now or self.clock.now(), policy=self.policy, new_id=self.new_id)
