"""The demo data behind `make run`: loaded once, and found again on the next start."""

from __future__ import annotations

import pytest

from restitution.cli import _print_welcome
from restitution.services import demo
from restitution.services.context import App


def test_demo_data_is_loaded_once_then_found_again(app: App) -> None:
    assert demo.load(app) is True

    assert demo.load(app) is False


def test_the_operator_key_is_printed_whole_only_when_made_now_or_for_the_demo(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "rst_op_a_deployments_secret_9f3c"
    app.settings = app.settings.model_copy(update={"operator_key": key})

    _print_welcome(app, key, generated=False, with_demo=False)  # a deployment: logs keep it
    deployment = capsys.readouterr().out
    _print_welcome(app, key, generated=True, with_demo=False)
    generated = capsys.readouterr().out

    assert key not in deployment
    assert "Operator key:  from RESTITUTION_OPERATOR_KEY (ends …9f3c)" in deployment
    assert f"Operator key:  {key}" in generated
