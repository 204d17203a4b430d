"""The portal, the console and their static files, mounted beside the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from restitution.services.context import App
from restitution.web.console import create_console
from restitution.web.portal import create_portal

STATIC_DIR = Path(__file__).parent / "static"


def mount_web(api: FastAPI, app: App, operator_key: str) -> None:
    api.mount("/portal", create_portal(app, operator_key), name="portal")
    api.mount("/console", create_console(app, operator_key), name="console")
    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
