import gc
import signal
from importlib.resources import files
from pathlib import Path
from typing import Any

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


def _server_env(tmp_path: Path) -> dict[str, str]:
    return {
        "RESTITUTION_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "RESTITUTION_OPERATOR_KEY": "rst_op_test",
        "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
    }


def _invoke_unfrozen(args: list[str], env: dict[str, str]) -> Any:
    """Run a command from an unfrozen heap and unfreeze what it froze (pytest lives on)."""
    gc.unfreeze()
    try:
        return runner.invoke(app, args, env=env)
    finally:
        gc.unfreeze()


def test_serve_keeps_what_start_up_made_out_of_the_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    frozen_when_serving: list[int] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *_, **__: frozen_when_serving.append(gc.get_freeze_count())
    )

    result = _invoke_unfrozen(["serve", "--no-sweeper"], _server_env(tmp_path))

    assert result.exit_code == 0, result.output
    assert frozen_when_serving and frozen_when_serving[0] > 0


def test_the_worker_keeps_what_start_up_made_out_of_the_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restitution.services.worker import Worker

    env = _server_env(tmp_path)
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    frozen_when_starting: list[int] = []
    monkeypatch.setattr(
        Worker, "start", lambda _: frozen_when_starting.append(gc.get_freeze_count())
    )
    monkeypatch.setattr(Worker, "wait", lambda _: None)

    result = _invoke_unfrozen(["worker"], env)

    assert result.exit_code == 0, result.output
    assert frozen_when_starting and frozen_when_starting[0] > 0


def test_the_worker_gives_back_the_sigterm_handler_it_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run in this process, it must not leave its handler behind: processes forked later
    # (an import's validating pool) would inherit it and outlive a terminate.
    from restitution.services.worker import Worker

    env = _server_env(tmp_path)
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    during: list[object] = []
    monkeypatch.setattr(Worker, "start", lambda _: None)
    monkeypatch.setattr(Worker, "wait", lambda _: during.append(signal.getsignal(signal.SIGTERM)))
    before = signal.getsignal(signal.SIGTERM)

    result = _invoke_unfrozen(["worker"], env)

    assert result.exit_code == 0, result.output
    assert during and during[0] is not before  # the worker's own, while it ran
    assert signal.getsignal(signal.SIGTERM) is before


def test_serve_on_sqlite_dispatches_its_outbox_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from restitution.api import app as api_module
    from restitution.services.worker import Worker

    create_api, given = api_module.create_api, []

    def recording(*args: Any, on_event_loop: Any = None) -> Any:
        given.append(on_event_loop)
        return create_api(*args, on_event_loop=on_event_loop)

    monkeypatch.setattr(api_module, "create_api", recording)
    monkeypatch.setattr(Worker, "start", lambda _: None)
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: None)

    result = _invoke_unfrozen(["serve"], _server_env(tmp_path))

    assert result.exit_code == 0, result.output
    [on_event_loop] = given
    assert on_event_loop is not None
    worker = on_event_loop.__self__
    assert isinstance(worker, Worker) and worker.outbox_on_event_loop


def test_a_bad_setting_is_named_with_what_it_should_be(tmp_path: Path) -> None:
    env = {
        **_server_env(tmp_path),
        "RESTITUTION_LOG_FORMAT": "xml",
        "RESTITUTION_WORKER_THREADS": "0",
    }

    result = runner.invoke(app, ["migrate"], env=env)

    assert result.exit_code == 2
    assert "RESTITUTION_LOG_FORMAT: Input should be 'auto', 'json' or 'console'" in result.output
    assert "RESTITUTION_WORKER_THREADS: Input should be greater than or equal to 1" in result.output
    assert "Traceback" not in result.output
