import gc
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restitution.cli import app

DEFAULT_TEXT = files("restitution.policies").joinpath("default.toml").read_text(encoding="utf-8")
runner = CliRunner()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_policy_show_prints_the_built_in_clauses_and_deadlines() -> None:
    result = runner.invoke(app, ["policy", "show"], env={"RESTITUTION_POLICY": None})
    assert result.exit_code == 0, result.output
    assert "Policy default version 1" in result.stdout
    assert "W1" in result.stdout
    assert "3 business days" in result.stdout
    assert "D7" in result.stdout


def test_policy_show_reads_the_file_given(tmp_path: Path) -> None:
    path = _write(tmp_path, DEFAULT_TEXT.replace('id = "default"', 'id = "shop-eu"'))
    result = runner.invoke(app, ["policy", "show", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert "Policy shop-eu version 1" in result.stdout


def test_policy_show_reads_the_restitution_policy_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, DEFAULT_TEXT.replace('id = "default"', 'id = "from-env"'))
    result = runner.invoke(app, ["policy", "show"], env={"RESTITUTION_POLICY": str(path)})
    assert result.exit_code == 0, result.output
    assert "Policy from-env version 1" in result.stdout


def test_policy_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = _write(tmp_path, DEFAULT_TEXT)
    result = runner.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"{path}: OK (policy default version 1, 14 clauses, 7 deadlines)"
    )


def test_policy_check_reports_each_problem_with_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, DEFAULT_TEXT.replace("default_days = 15", 'default_days = "15"'))
    line = next(
        n for n, text in enumerate(DEFAULT_TEXT.splitlines(), 1) if "default_days = 15" in text
    )
    result = runner.invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}:{line}:1: windows.default_days must be a positive")


def test_policy_check_reports_a_file_it_cannot_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policy", "check", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_serve_keeps_what_start_up_made_out_of_the_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    frozen_when_serving: list[int] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *_, **__: frozen_when_serving.append(gc.get_freeze_count())
    )
    env = {
        "RESTITUTION_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "RESTITUTION_OPERATOR_KEY": "rst_op_test",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
    }
    try:
        result = runner.invoke(app, ["serve", "--no-sweeper"], env=env)
    finally:
        gc.unfreeze()

    assert result.exit_code == 0, result.output
    assert frozen_when_serving and frozen_when_serving[0] > 10_000
