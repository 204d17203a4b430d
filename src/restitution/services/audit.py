"""Recompute the hash chains of case histories and name the first broken link."""

from __future__ import annotations

from dataclasses import dataclass

from restitution.adapters.db.audit import case_versions
from restitution.adapters.db.repository import Repository
from restitution.domain.history import BrokenLink, verify_chain
from restitution.services.context import App
from restitution.services.ports import StoredEvent


@dataclass(frozen=True)
class AuditReport:
    cases_checked: int
    events_checked: int
    broken: list[BrokenLink]


def verify(app: App, case_id: str | None = None) -> AuditReport:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        versions = case_versions(conn, case_id)
        if case_id is None:
            case_ids = sorted({*versions, *repo.case_ids_with_events()})
        else:  # a case that is known, by its row or by its events; otherwise none
            case_ids = [case_id] if case_id in versions or repo.case_events(case_id) else []
        broken: list[BrokenLink] = []
        events = 0
        for cid in case_ids:
            stored = repo.case_events(cid)
            events += len(stored)
            link = verify_chain((event.chained, event.hash) for event in stored)
            if link is None:
                link = _missing_tail(cid, stored, versions.get(cid))
            if link is not None:
                broken.append(link)
    return AuditReport(len(case_ids), events, broken)


def _missing_tail(
    case_id: str, stored: list[StoredEvent], version: int | None
) -> BrokenLink | None:
    """Every action writes one event and bumps the case's version, so a chain shorter than
    the version has lost its latest events (which the chain alone cannot show)."""
    if version is None or len(stored) >= version:
        return None
    return BrokenLink(
        case_id,
        len(stored) + 1,
        "",
        f"events {len(stored) + 1}-{version} are missing (the case is at version {version})",
    )
