"""Evidence: photos and videos, typed from their bytes, stored with their SHA-256.

An upload comes before the case or message that uses it; one that none uses (the case was
refused, the message never sent) is deleted `unused_upload_hours` after it was made, by the
worker's clock loop (`delete_unused`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import filetype
import structlog

from restitution.adapters.db.repository import Repository
from restitution.domain.errors import InvalidInput
from restitution.services.auth import Principal, can_see_case, not_found
from restitution.services.context import App

log = structlog.get_logger()
# Unused uploads deleted per transaction.
SWEEP_BATCH = 200


@dataclass(frozen=True)
class Download:
    row: Any
    data: bytes


def upload(app: App, principal: Principal, data: bytes, filename: str | None) -> Any:
    if not data:
        raise InvalidInput("empty_file", "the file is empty", param="file")
    if len(data) > app.settings.max_upload_bytes:
        raise InvalidInput(
            "file_too_large",
            f"files may be at most {app.settings.max_upload_bytes} bytes",
            param="file",
        )
    kind = filetype.guess(data)
    if kind is None or not kind.mime.startswith(("image/", "video/")):
        raise InvalidInput(
            "unsupported_file_type", "evidence must be a photo or a video", param="file"
        )
    if filename and "\x00" in filename:  # PostgreSQL cannot store it: refused on every backend
        raise InvalidInput(
            "invalid_filename", "the file name must not contain NUL characters", param="file"
        )
    now = app.clock.now()
    # Before the row: a file no row refers to is deleted only if it was not put since the
    # cutoff (`delete_unused`), so this one, about to be referred to, stays.
    key, digest = app.storage.put(data, now)
    attachment_id = app.new_id("att")
    with app.db.transaction() as conn:
        repo = Repository(conn)
        repo.insert_attachment(
            {
                "id": attachment_id,
                "owner_role": principal.role,
                "owner_id": principal.party_id,
                "filename": (filename or "")[:255] or None,
                "content_type": kind.mime,
                "size": len(data),
                "sha256": digest,
                "storage_key": key,
                "created_at": now,
            }
        )
        return repo.get_attachment(attachment_id)


def download(app: App, principal: Principal, attachment_id: str) -> Download:
    with app.db.transaction(write=False) as conn:
        repo = Repository(conn)
        row = repo.get_attachment(attachment_id)
        if row is None or not _may_see(repo, principal, row):
            raise not_found("attachment", attachment_id)
    return Download(row, app.storage.get(row.storage_key))


def _owns(principal: Principal, row: Any) -> bool:
    return principal.is_operator or (
        row.owner_role == principal.role and row.owner_id == principal.party_id
    )


def _may_see(repo: Repository, principal: Principal, row: Any) -> bool:
    if _owns(principal, row):
        return True
    if row.case_id is None:
        return False
    case = repo.get_case(row.case_id)
    return case is not None and can_see_case(principal, case)


def claim_attachments(
    repo: Repository, principal: Principal, attachment_ids: Sequence[str], case_id: str
) -> None:
    """Attach uploaded files to a case: each must be the uploader's own, and not on another case."""
    unlinked: set[str] = set()
    for attachment_id in attachment_ids:
        row = repo.get_attachment(attachment_id)
        usable = row is not None and _owns(principal, row) and row.case_id in (None, case_id)
        if not usable:
            raise InvalidInput(
                "invalid_attachment",
                f"{attachment_id!r} is not an attachment you uploaded for this case",
                param="attachments",
            )
        if row.case_id is None:
            unlinked.add(attachment_id)
    if unlinked and repo.link_attachments(unlinked, case_id) < len(unlinked):
        # Deleted as unused between the read above and the link (`delete_unused`).
        raise InvalidInput(
            "invalid_attachment",
            "an attachment was deleted, unused for too long: upload it again",
            param="attachments",
        )


def delete_unused(app: App, now: datetime | None = None, *, limit: int = 10_000) -> int:
    """Delete the uploads that no case or message has used `unused_upload_hours` after they
    were made: their rows, a batch per transaction, then each file no row refers to any more.
    Returns how many uploads were deleted (up to `limit`)."""
    now = now or app.clock.now()
    cutoff = now - timedelta(hours=app.settings.unused_upload_hours)
    # Asked first, in a read: most ticks find none, and on SQLite a write transaction waits
    # for the requests' writes, and holds them up.
    with app.db.transaction(write=False) as conn:
        if not Repository(conn).any_unused_attachment(cutoff):
            return 0
    deleted = 0
    while deleted < limit:
        size = min(SWEEP_BATCH, limit - deleted)
        with app.db.transaction() as conn:
            keys = Repository(conn).delete_unused_attachments(cutoff, size)
        deleted += len(keys)
        if keys:
            _delete_files(app, set(keys), cutoff)
        if len(keys) < size:
            break
    return deleted


def _delete_files(app: App, keys: Collection[str], cutoff: datetime) -> None:
    """Delete the files of `keys` that no row refers to, unless put since `cutoff` (an upload
    of the same bytes under way). Asked once the rows' deletion has committed: of two workers
    deleting the last two rows of one file at once, the later to commit sees neither row."""
    with app.db.transaction(write=False) as conn:
        in_use = Repository(conn).storage_keys_in_use(keys)
    for key in sorted(set(keys) - in_use):
        try:
            app.storage.delete(key, written_before=cutoff)
        except OSError as exc:  # the row is gone: the file is left, the others still go
            log.warning("evidence_file_not_deleted", storage_key=key, error=str(exc))
