"""Recompute the hash chains of case histories and name the first broken link."""

from __future__ import annotations

from dataclasses import dataclass

from restitution.adapters.db.repository import Repository
from restitution.domain.history import BrokenLink, verify_chain
from restitution.services.context import App


@dataclass(frozen=True)
class AuditReport:
    cases_checked: int
    events_checked: int
    broken: list[BrokenLink]


def verify(app: App, case_id: str | None = None) -> AuditReport:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        case_ids = [case_id] if case_id else repo.case_ids_with_events()
        broken: list[BrokenLink] = []
        events = 0
        for cid in case_ids:
            stored = repo.case_events(cid)
            events += len(stored)
            link = verify_chain((event.chained, event.hash) for event in stored)
            if link is not None:
                broken.append(link)
    return AuditReport(len(case_ids), events, broken)
