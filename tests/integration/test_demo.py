"""The demo data behind `make run`: loaded once, and found again on the next start."""

from __future__ import annotations

from restitution.services import demo
from restitution.services.context import App


def test_demo_data_is_loaded_once_then_found_again(app: App) -> None:
    assert demo.load(app) is True

    assert demo.load(app) is False
