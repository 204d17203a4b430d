"""Evidence uploads: typed from their bytes, hashed, shown only to those who may see the case."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from restitution.settings import Settings
from tests.integration.conftest import PNG, Api, make_settings

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
MAX_UPLOAD = 4096


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_upload_bytes=MAX_UPLOAD)


def upload(api: Api, data: bytes, filename: str, content_type: str, party: str = "b_1") -> Any:
    return api.client.post(
        "/v1/attachments",
        files={"file": (filename, data, content_type)},
        headers=api.auth("buyer", party),
    )


def assert_invalid(response: Any, code: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request", code, "file")


@pytest.mark.parametrize(
    ("data", "sniffed"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (MP4, "video/mp4")],
    ids=["png", "jpeg", "mp4"],
)
def test_upload_is_typed_from_its_bytes_and_hashed(api: Api, data: bytes, sniffed: str) -> None:
    # The client's file name and content type lie; the bytes decide.
    response = upload(api, data, "evidence.txt", "text/plain")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("att_")
    assert body["content_type"] == sniffed
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert datetime.fromisoformat(body["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"just some text, not a photo\n" * 4, "unsupported_file_type"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64, "unsupported_file_type"),
        (b"", "empty_file"),
        (PNG + b"\x00" * MAX_UPLOAD, "file_too_large"),
    ],
    ids=["text-named-png", "pdf", "empty", "oversize"],
)
def test_upload_refuses_what_is_not_evidence(api: Api, data: bytes, code: str) -> None:
    assert_invalid(upload(api, data, "photo.png", "image/png"), code)


def test_a_file_name_with_a_nul_character_is_refused_and_nothing_is_stored(
    api: Api, tmp_path: Path
) -> None:
    # It was kept on SQLite, and refused by PostgreSQL only after the bytes were stored.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="photo\x00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--b--\r\n"
    )
    response = api.client.post(
        "/v1/attachments",
        content=body,
        headers={**api.auth("buyer", "b_1"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_invalid(response, "invalid_filename")
    assert [path for path in (tmp_path / "evidence").rglob("*") if path.is_file()] == []


def test_upload_without_a_file_is_invalid_request(api: Api) -> None:
    response = api.client.post(
        "/v1/attachments", data={"other": "x"}, headers=api.auth("buyer", "b_1")
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"


def assert_download(
    api: Api, role: str, party_id: str | None, attachment_id: str, data: bytes
) -> None:
    response = api.as_(role, party_id)("GET", f"/v1/attachments/{attachment_id}")
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_download_by_owner_then_by_the_case_parties(api: Api) -> None:
    api.put_order()
    attachment_id = upload(api, JPEG, "photo.jpg", "image/jpeg").json()["id"]
    assert_download(api, "buyer", "b_1", attachment_id, JPEG)
    assert_download(api, "operator", None, attachment_id, JPEG)
    # Before it is on a case, nobody else sees it.
    for role, party in (("seller", "s_1"), ("buyer", "b_2"), ("mediator", "m_1")):
        response = api.as_(role, party)("GET", f"/v1/attachments/{attachment_id}")
        assert response.status_code == 404, response.text

    case = api.open_case(attachments=[attachment_id])
    assert case.status_code == 201, case.text
    assert_download(api, "seller", "s_1", attachment_id, JPEG)
    for role, party in (("buyer", "b_2"), ("seller", "s_2"), ("mediator", "m_1")):
        response = api.as_(role, party)("GET", f"/v1/attachments/{attachment_id}")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["type"] == "not_found"

    case_id = case.json()["id"]
    api.as_("seller", "s_1")("POST", f"/v1/cases/{case_id}/reject", json={"reason": "no"})
    escalated = api.as_("buyer", "b_1")("POST", f"/v1/cases/{case_id}/escalate", json={})
    assert escalated.status_code == 200, escalated.text
    assert_download(api, "mediator", "m_1", attachment_id, JPEG)


def test_message_attachment_is_visible_to_the_other_party(api: Api) -> None:
    api.put_order()
    case_id = api.open_case().json()["id"]
    attachment_id = upload(api, JPEG, "more.jpg", "image/jpeg").json()["id"]
    posted = api.as_("buyer", "b_1")(
        "POST",
        f"/v1/cases/{case_id}/messages",
        json={"body": "see", "attachments": [attachment_id]},
    )
    assert posted.status_code == 200, posted.text
    assert_download(api, "seller", "s_1", attachment_id, JPEG)
    assert api.as_("buyer", "b_2")("GET", f"/v1/attachments/{attachment_id}").status_code == 404


def test_unknown_attachment_is_404(api: Api) -> None:
    response = api.as_("buyer", "b_1")("GET", "/v1/attachments/att_nope")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found"


def test_another_buyers_attachment_cannot_be_used_as_evidence(api: Api) -> None:
    api.put_order()
    theirs = api.upload("buyer", "b_2")
    response = api.open_case(attachments=[theirs])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request",
        "invalid_attachment",
        "attachments",
    )
    cases = api.client.get("/v1/cases", headers=api.auth()).json()["data"]
    assert cases == []
    # The other buyer's file is still theirs alone, and still unlinked.
    assert api.as_("seller", "s_1")("GET", f"/v1/attachments/{theirs}").status_code == 404
    assert api.as_("buyer", "b_2")("GET", f"/v1/attachments/{theirs}").status_code == 200


def test_an_attachment_on_one_case_cannot_be_moved_to_another(api: Api) -> None:
    api.put_order()
    attachment_id = api.upload("buyer", "b_1")
    first = api.open_case(attachments=[attachment_id])
    assert first.status_code == 201, first.text
    second = api.open_case(
        lines=[{"line_id": "l2", "quantity": 1}],
        request={"kind": "refund", "amount": {"amount": 1300, "currency": "USD"}},
        attachments=[attachment_id],
    )
    assert second.status_code == 400, second.text
    assert second.json()["error"]["code"] == "invalid_attachment"
