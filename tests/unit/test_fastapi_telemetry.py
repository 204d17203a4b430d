"""FastAPI's own OpenTelemetry: on as the deployment set it up, off (and free) otherwise."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider

from restitution.api.app import fastapi_telemetry

OFF = {"tracing": False, "metrics": False, "logs": False}


@pytest.fixture(autouse=True)
def _no_auto_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTAPI_OTEL_AUTO_CONFIGURE", raising=False)


def test_off_when_no_provider_is_set() -> None:
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
    assert fastapi_telemetry() == OFF


def test_fastapi_s_defaults_when_a_tracer_provider_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As `opentelemetry-instrument` or the deployment's own code does before the server starts.
    monkeypatch.setattr(trace, "get_tracer_provider", NoOpTracerProvider)
    assert fastapi_telemetry() is None


@pytest.mark.parametrize(("value", "expected"), [("true", None), ("TRUE", None), ("no", OFF)])
def test_fastapi_s_auto_configuration_is_honoured(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: object
) -> None:
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", value)
    assert fastapi_telemetry() == expected
