"""Property-based requests from the served OpenAPI document: no request, however malformed,
produces a 5xx, and every answer matches the schema documented for its status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from restitution.api.app import create_api
from restitution.bootstrap import build_app
from restitution.services.clock import TestClock
from tests.conftest import START
from tests.integration.conftest import OPERATOR_KEY, make_settings, order_body

EXAMPLES_PER_OPERATION = 8
AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def schema(sqlite_template: Path, tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    path = tmp_path / "restitution.db"
    path.write_bytes(sqlite_template.read_bytes())
    application = build_app(
        make_settings(f"sqlite:///{path}", tmp_path), clock=TestClock(START), auto_migrate=False
    )
    asgi = create_api(application, OPERATOR_KEY)
    loaded = schemathesis.openapi.from_asgi("/openapi.json", asgi)
    # Something to find: an order that generated order ids may hit.
    from fastapi.testclient import TestClient

    with TestClient(asgi) as client:
        assert client.put("/v1/orders/o_1", json=order_body(), headers=AUTH).status_code == 201
    yield loaded
    application.db.dispose()


def test_error_statuses_are_documented_with_the_error_shape(
    schema: schemathesis.BaseSchema,
) -> None:
    document = schema.raw_schema
    error_ref = "#/components/schemas/ErrorResponse"
    for path, item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            for status in ("400", "401", "403", "404", "409", "422"):
                response = operation["responses"].get(status)
                assert response is not None, f"{method.upper()} {path} does not document {status}"
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": error_ref}, (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    "mode",
    [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    ids=["positive", "negative"],
)
def test_generated_requests_get_documented_answers(
    schema: schemathesis.BaseSchema, mode: schemathesis.GenerationMode
) -> None:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def run(data: st.DataObject) -> None:
            case = data.draw(operation.as_strategy(generation_mode=mode))  # noqa: B023
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to negate: the operation takes no parameters
        except Exception as error:  # a failure: collect it, report every operation at once
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("url", ["http://[::1", "https://[oops/x", "http://host:99999/x"])
def test_a_malformed_webhook_url_is_invalid_request(
    schema: schemathesis.BaseSchema, url: str
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(schema.app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/webhook_endpoints", json={"url": url, "events": ["case.*"]}, headers=AUTH
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "url"
