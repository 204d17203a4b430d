"""Evidence: photos and videos, typed from their bytes, stored with their SHA-256."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import filetype

from restitution.adapters.db.repository import Repository
from restitution.domain.errors import InvalidInput
from restitution.services.auth import Principal, can_see_case, not_found
from restitution.services.context import App


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
    key, digest = app.storage.put(data)
    now = app.clock.now()
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
    for attachment_id in attachment_ids:
        row = repo.get_attachment(attachment_id)
        usable = row is not None and _owns(principal, row) and row.case_id in (None, case_id)
        if not usable:
            raise InvalidInput(
                "invalid_attachment",
                f"{attachment_id!r} is not an attachment you uploaded for this case",
                param="attachments",
            )
    if attachment_ids:
        repo.link_attachments(attachment_ids, case_id)
