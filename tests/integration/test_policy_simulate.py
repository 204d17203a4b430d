"""`restitution policy simulate DRAFT`: the stored cases replayed under a draft policy."""

from __future__ import annotations

import importlib.resources
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from restitution import cli
from restitution.cli import app
from tests.conftest import START
from tests.integration.case_steps import FULL_L1, buyer, ok, refund_request, seller, usd
from tests.integration.conftest import Api

runner = CliRunner()
DEFAULT = importlib.resources.files("restitution.policies").joinpath("default.toml").read_text()


def _policy(path: Path, *, version: int, electronics_days: int = 30) -> Path:
    text = DEFAULT.replace("\nversion = 1\n", f"\nversion = {version}\n").replace(
        "\nelectronics = 30\n", f"\nelectronics = {electronics_days}\n"
    )
    assert text.count(f"version = {version}") == 1
    assert text.count(f"electronics = {electronics_days}") == 1
    path.write_text(text, encoding="utf-8")
    return path


def _simulate(api: Api, tmp_path: Path, *args: str, **env: str) -> Any:
    settings = api.app.settings
    return runner.invoke(
        app,
        ["policy", "simulate", *args],
        env={
            "RESTITUTION_DATABASE_URL": settings.database_url,
            "RESTITUTION_OPERATOR_KEY": "k",
            "RESTITUTION_STORAGE_DIR": str(tmp_path / "evidence"),
            **env,
        },
    )


def _report(api: Api, tmp_path: Path, *args: str, **env: str) -> dict[str, Any]:
    result = _simulate(api, tmp_path, *args, "--json", **env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _cases(api: Api) -> tuple[str, str, str]:
    """On o_late (its phone delivered 20 days before the clock starts): a case refunded 1000,
    then a damaged case for the rest, left open. On o_fresh (delivered the day before): a
    damaged case. The three opened an hour apart."""
    late = START - timedelta(days=20)
    api.put_order(
        "o_late",
        placed_at=(late - timedelta(days=5)).isoformat(),
        shipped_at=(late - timedelta(days=3)).isoformat(),
        promised_delivery_by=(late - timedelta(days=1)).isoformat(),
        delivered_at=late.isoformat(),
    )
    api.put_order("o_fresh")
    partly = ok(
        api.open_case("o_late", reason="not_as_described", request=refund_request(2000)), 201
    )["id"]
    seller(api, partly, "offers", kind="refund", amount=usd(1000))
    buyer(api, partly, "accept")
    api.advance(hours=1)
    rest = ok(api.open_case("o_late", request=refund_request(FULL_L1 - 1000)), 201)["id"]
    api.advance(hours=1)
    fresh = ok(api.open_case("o_fresh"), 201)["id"]
    return partly, rest, fresh


def test_a_shorter_electronics_window_refuses_the_late_cases(api: Api, tmp_path: Path) -> None:
    partly, rest, _ = _cases(api)
    draft = _policy(tmp_path / "draft.toml", version=2, electronics_days=10)

    report = _report(api, tmp_path, str(draft))

    assert (report["draft"], report["replayed"]) == ("default v2", 3)
    assert (report["compared_with_active"], report["baseline_refused"]) == ({}, 0)
    assert report["totals"] == {
        "USD": {
            "refused_cases": 2,
            "refused_granted": 1000,
            "allowed_cases": 0,
            "cap_changed_cases": 0,
            "cap_change": 0,
        }
    }
    assert report["refusals"] == [{"code": "return_window_closed", "clause": "W2", "cases": 2}]
    newest, oldest = report["cases"]
    assert (newest["case_id"], oldest["case_id"]) == (rest, partly)
    assert (newest["granted"], oldest["granted"]) == (usd(0), usd(1000))
    # The later case's cap is what the earlier one's refund left on the line.
    assert (newest["cap_before"], oldest["cap_before"]) == (usd(FULL_L1 - 1000), usd(FULL_L1))
    assert newest["lines"][0]["after"] == {
        "eligible": False,
        "code": "return_window_closed",
        "clauses": ["W2"],
        "max_refund": usd(0),
    }


def test_the_table_names_the_refusals_and_what_is_not_modelled(api: Api, tmp_path: Path) -> None:
    partly, rest, _ = _cases(api)
    draft = _policy(tmp_path / "draft.toml", version=2, electronics_days=10)

    result = _simulate(api, tmp_path, str(draft), COLUMNS="200")

    assert result.exit_code == 0, result.output
    assert "Replayed 3 cases under draft default v2." in result.stdout
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "case_" in line}
    assert set(rows) == {partly, rest}  # not the fresh case
    assert "refused: return_window_closed (W2)" in rows[partly]
    assert "refused: return_window_closed (W2)" in rows[rest]
    assert "10.00 USD" in rows[partly]  # what it was granted
    assert "2 cases refused: return_window_closed (W2)" in result.stdout
    assert "Not modelled:" in result.stdout


def test_a_narrow_terminal_gets_a_paragraph_a_case_with_its_change_whole(
    api: Api, tmp_path: Path
) -> None:
    partly, rest, _ = _cases(api)
    draft = _policy(tmp_path / "draft.toml", version=2, electronics_days=10)

    result = _simulate(api, tmp_path, str(draft), COLUMNS="80")

    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the paragraphs, unfolded
    assert "2 cases change:" in text
    for case_id in (partly, rest):
        assert f"- {case_id} (opened " in text
    assert f"{partly} (opened" in text and "refused: return_window_closed (W2); granted" in text
    assert text.count("refused: return_window_closed (W2); granted") == 2


def test_the_table_shows_the_newest_changes_and_counts_the_rest(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partly, rest, _ = _cases(api)
    draft = _policy(tmp_path / "draft.toml", version=2, electronics_days=10)
    monkeypatch.setattr(cli, "MAX_CASES_SHOWN", 1)

    result = _simulate(api, tmp_path, str(draft), COLUMNS="200")

    assert rest in result.stdout and partly not in result.stdout
    assert "… and 1 more: --json lists them all" in result.stdout


def test_since_and_limit_choose_the_newest_cases(api: Api, tmp_path: Path) -> None:
    _, rest, _ = _cases(api)
    draft = str(_policy(tmp_path / "draft.toml", version=2, electronics_days=10))

    newest_two = _report(api, tmp_path, draft, "--limit", "2")
    tomorrow = (START + timedelta(days=1)).date().isoformat()
    none = _report(api, tmp_path, draft, "--since", tomorrow)

    assert newest_two["replayed"] == 2
    assert [case["case_id"] for case in newest_two["cases"]] == [rest]
    assert (none["replayed"], none["cases"]) == (0, [])


def test_a_draft_changing_nothing_reports_nothing(api: Api, tmp_path: Path) -> None:
    _cases(api)
    same = _policy(tmp_path / "same.toml", version=2)

    report = _report(api, tmp_path, str(same))

    assert (report["replayed"], report["totals"], report["cases"]) == (3, {}, [])


def test_cases_judged_under_a_policy_not_at_hand_are_compared_with_the_active_one(
    api: Api, tmp_path: Path
) -> None:
    _cases(api)
    active = _policy(tmp_path / "active.toml", version=3)
    earlier = _policy(tmp_path / "earlier.toml", version=1)
    draft = str(_policy(tmp_path / "draft.toml", version=4, electronics_days=10))

    without = _report(api, tmp_path, draft, RESTITUTION_POLICY=str(active))
    given = _report(api, tmp_path, draft, "--earlier", str(earlier), RESTITUTION_POLICY=str(active))

    assert without["compared_with_active"] == {"default v1": 3}
    assert {case["compared_with"] for case in without["cases"]} == {"default v3"}
    assert given["compared_with_active"] == {}
    assert {case["compared_with"] for case in given["cases"]} == {"default v1"}
    assert without["totals"] == given["totals"]


def test_a_draft_with_problems_is_refused_as_policy_check_reports_them(
    api: Api, tmp_path: Path
) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text(DEFAULT.replace("\nelectronics = 30\n", "\nelectronics = -3\n"))

    result = _simulate(api, tmp_path, str(draft))
    check = runner.invoke(app, ["policy", "check", str(draft)])

    assert result.exit_code == 2
    assert result.stdout == check.stdout
    assert f"{draft}:" in result.stdout


def test_a_case_its_own_policy_refuses_now_is_counted_as_not_reproduced(
    api: Api, tmp_path: Path
) -> None:
    _cases(api)
    moved = START - timedelta(days=40)  # o_fresh's dates moved after its case was opened
    api.put_order(
        "o_fresh",
        placed_at=(moved - timedelta(days=5)).isoformat(),
        shipped_at=(moved - timedelta(days=3)).isoformat(),
        promised_delivery_by=(moved - timedelta(days=1)).isoformat(),
        delivered_at=moved.isoformat(),
    )
    same = _policy(tmp_path / "same.toml", version=2)

    report = _report(api, tmp_path, str(same))

    assert (report["replayed"], report["baseline_refused"], report["cases"]) == (3, 1, [])
