"""Settings from the environment, prefix RESTITUTION_ (see README, Configuration)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RESTITUTION_", extra="ignore")

    database_url: str = "sqlite:///var/restitution.db"
    operator_key: str | None = None
    test_clock: bool = False
    policy: Path | None = None
    storage_dir: Path = Path("var/evidence")
    refund_gateway: Literal["ledger", "operator"] = "ledger"
    webhook_allow_private: bool = False
    max_upload_bytes: int = 20 * 1024 * 1024
    public_url: str = "http://127.0.0.1:8000"
    key_file: Path = Path("var/operator_key")
