"""Uploads that no case or message uses are deleted `unused_upload_hours` after they were made
(24 by default), by the worker's clock loop: their rows, and their files unless other uploads
have the same bytes. Evidence in use is never touched."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from restitution.adapters.db import tables as t
from restitution.adapters.db.repository import Repository
from restitution.services import attachments
from restitution.services.clock import TestClock
from restitution.services.context import App
from restitution.services.worker import Worker
from tests.integration.case_steps import ok, open_case, usd
from tests.integration.conftest import ON_POSTGRES, PNG, Api

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


def stored_file(api: Api, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return Path(api.app.settings.storage_dir) / digest[:2] / digest


def download(api: Api, attachment_id: str) -> Any:
    return api.client.get(f"/v1/attachments/{attachment_id}", headers=api.auth())


def attachment_ids(app: App) -> set[str]:
    with app.db.transaction(write=False) as conn:
        return set(conn.execute(select(t.attachments.c.id)).scalars())


def test_an_upload_unused_past_the_cutoff_is_deleted_with_its_file(api: Api) -> None:
    attachment_id = api.upload("buyer", "b_1", JPEG)
    assert stored_file(api, JPEG).exists()

    api.advance(hours=24, seconds=1)

    assert attachment_ids(api.app) == set()
    assert not stored_file(api, JPEG).exists()
    response = download(api, attachment_id)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found"


def test_an_upload_younger_than_the_cutoff_is_kept(api: Api) -> None:
    attachment_id = api.upload("buyer", "b_1", JPEG)

    api.advance(hours=24)

    assert download(api, attachment_id).content == JPEG
    assert stored_file(api, JPEG).exists()


def test_evidence_on_a_case_or_a_message_is_kept_for_good(api: Api) -> None:
    on_case = api.upload("buyer", "b_1", PNG)
    case = open_case(api, attachments=[on_case])
    on_message = api.upload("buyer", "b_1", JPEG)
    posted = api.as_("buyer", "b_1")(
        "POST",
        f"/v1/cases/{case['id']}/messages",
        json={"body": "another angle", "attachments": [on_message]},
    )
    ok(posted)

    api.advance(days=400)

    assert attachment_ids(api.app) == {on_case, on_message}
    assert download(api, on_case).content == PNG
    assert download(api, on_message).content == JPEG


def test_an_unused_upload_goes_but_not_the_file_another_upload_of_its_bytes_uses(
    api: Api,
) -> None:
    unused = api.upload("buyer", "b_1", PNG)
    used = api.upload("buyer", "b_1", PNG)
    open_case(api, attachments=[used])

    api.advance(hours=25)

    assert attachment_ids(api.app) == {used}
    assert download(api, unused).status_code == 404
    assert download(api, used).content == PNG
    assert stored_file(api, PNG).exists()


def test_the_evidence_of_a_refused_case_is_deleted_after_the_cutoff(api: Api) -> None:
    api.put_order()
    attachment_id = api.upload("buyer", "b_1", JPEG)
    refused = api.open_case(
        attachments=[attachment_id],
        request={"kind": "refund", "amount": usd(1_000_000)},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "amount_exceeds_refundable"

    api.advance(hours=25)

    assert download(api, attachment_id).status_code == 404
    assert not stored_file(api, JPEG).exists()


def test_the_worker_deletes_unused_uploads_on_its_clock_loop(api: Api, clock: TestClock) -> None:
    api.upload("buyer", "b_1", PNG)
    api.upload("buyer", "b_2", JPEG)
    clock.advance(int(timedelta(hours=25).total_seconds()))

    assert Worker(api.app).run_once()["clock"] == 2

    assert attachment_ids(api.app) == set()
    assert not stored_file(api, PNG).exists() and not stored_file(api, JPEG).exists()


def test_uploads_are_deleted_in_batches(
    api: Api, clock: TestClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attachments, "SWEEP_BATCH", 2)
    for number in range(5):
        api.upload("buyer", "b_1", PNG + bytes([number]))
    clock.advance(int(timedelta(hours=25).total_seconds()))

    assert attachments.delete_unused(api.app, limit=3) == 3
    assert len(attachment_ids(api.app)) == 2
    assert attachments.delete_unused(api.app) == 2
    assert attachment_ids(api.app) == set()


def test_the_hours_are_a_setting(api: Api) -> None:
    api.app.settings = api.app.settings.model_copy(update={"unused_upload_hours": 2})
    attachment_id = api.upload("buyer", "b_1", JPEG)

    api.advance(hours=2)
    assert download(api, attachment_id).status_code == 200
    api.advance(seconds=1)
    assert download(api, attachment_id).status_code == 404


def test_an_upload_deleted_while_a_case_is_opened_with_it_refuses_the_case(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep deletes it between the case's read of the upload and its link to the case:
    the case is refused, rather than opened with evidence that is gone."""
    api.put_order()
    attachment_id = api.upload("buyer", "b_1", JPEG)
    read = Repository.get_attachment

    def read_then_swept(repo: Repository, wanted: str) -> Any:
        row = read(repo, wanted)
        repo.conn.execute(t.attachments.delete().where(t.attachments.c.id == wanted))
        return row

    monkeypatch.setattr(Repository, "get_attachment", read_then_swept)
    response = api.open_case(attachments=[attachment_id])
    monkeypatch.undo()

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_attachment"
    assert ok(api.client.get("/v1/cases", headers=api.auth()))["data"] == []
    assert attachment_ids(api.app) == {attachment_id}  # the refusal rolled the deletion back


@ON_POSTGRES
def test_an_upload_being_linked_to_a_case_is_not_deleted_meanwhile(
    api: Api, clock: TestClock
) -> None:
    case = open_case(api)
    late = api.upload("buyer", "b_1", JPEG)
    clock.advance(int(timedelta(hours=25).total_seconds()))

    with api.app.db.transaction() as conn:
        assert Repository(conn).link_attachments([late], case["id"]) == 1
        # Another worker's sweep, while the link is not committed yet.
        assert attachments.delete_unused(api.app) == 0

    assert attachments.delete_unused(api.app) == 0
    assert download(api, late).content == JPEG


@ON_POSTGRES
def test_two_workers_never_take_the_same_uploads(api: Api, clock: TestClock) -> None:
    api.upload("buyer", "b_1", PNG)
    api.upload("buyer", "b_1", JPEG)
    clock.advance(int(timedelta(hours=25).total_seconds()))
    cutoff = clock.now() - timedelta(hours=24)

    with api.app.db.transaction() as conn:
        [held] = Repository(conn).delete_unused_attachments(cutoff, 1)
        # The other worker skips the row this one holds, and takes the other, with its file.
        assert attachments.delete_unused(api.app) == 1

    assert attachment_ids(api.app) == set()
    kept = {data for data in (PNG, JPEG) if stored_file(api, data).exists()}
    assert [hashlib.sha256(data).hexdigest() for data in kept] == [held]
