from importlib.resources import files
from pathlib import Path

import pytest

from restitution.domain.policy import CLAUSE_IDS, DEADLINE_IDS
from restitution.policies import (
    PolicyError,
    PolicyProblem,
    check_policy_text,
    default_policy,
    load_policy,
)

DEFAULT_TEXT = files("restitution.policies").joinpath("default.toml").read_text(encoding="utf-8")


def _edit(old: str, new: str) -> str:
    assert DEFAULT_TEXT.count(old) == 1, old
    return DEFAULT_TEXT.replace(old, new)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def _only_problem(text: str) -> PolicyProblem:
    problems = check_policy_text(text, "p.toml")
    assert len(problems) == 1, problems
    return problems[0]


def test_default_policy_has_every_clause_and_deadline() -> None:
    policy = default_policy()
    assert (policy.id, policy.version) == ("default", 1)
    assert tuple(policy.clauses) == CLAUSE_IDS
    assert tuple(policy.deadlines) == DEADLINE_IDS


def test_default_policy_is_loaded_once() -> None:
    assert default_policy() is default_policy()


def test_default_policy_maps_the_settings_of_the_document() -> None:
    policy = default_policy()
    assert policy.return_window_days == 15
    assert dict(policy.category_windows) == {"electronics": 30}
    assert policy.protection_days_after_shipping == 60
    assert policy.refund_days_for("paypal") == 3
    assert policy.refund_business_days_default == 10
    assert policy.holiday_country == "US"
    assert policy.return_or_keep_threshold_percent == 30
    assert policy.evidence_checklist["not_as_described"] == (
        "Photo showing the difference from the description",
    )


def test_deadline_rules_keep_days_and_business_days() -> None:
    d5 = default_policy().deadlines["D5"]
    assert (d5.days, d5.business_days) == (3, True)
    assert default_policy().deadlines["D1"].business_days is False


def test_the_default_document_has_no_problems() -> None:
    assert check_policy_text(DEFAULT_TEXT, "default.toml") == []


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(_edit('id = "default"', 'id = "mine"'), encoding="utf-8")
    assert load_policy(path).id == "mine"


def test_load_policy_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_edit("version = 1", "version = 0"), encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert [p.line for p in raised.value.problems] == [_line_of(DEFAULT_TEXT, "version = 1")]
    assert str(path) in str(raised.value)


def test_a_syntax_error_is_reported_with_its_line_and_column() -> None:
    text = _edit("default_days = 15", "default_days = ")
    problem = _only_problem(text)
    assert (problem.line, problem.column) == (_line_of(text, "default_days ="), 16)
    assert problem.message.startswith("TOML syntax error")


def test_an_unknown_key_is_reported_on_its_own_line() -> None:
    text = _edit("default_days = 15", "default_days = 15\ndefualt_days = 3")
    problem = _only_problem(text)
    assert (problem.line, problem.column) == (_line_of(text, "defualt_days"), 1)
    assert "windows.defualt_days" in problem.message
    assert "did you mean default_days" in problem.message


def test_an_unknown_table_is_reported_at_its_header() -> None:
    text = _edit("[escalation]", "[escalatoin]")
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "[escalatoin]")
    assert "unknown table escalatoin" in problem.message


def test_a_missing_clause_is_reported_at_the_clauses_table() -> None:
    text = _edit('H2 = "Custom-made', 'H9 = "Custom-made')
    problems = check_policy_text(text, "p.toml")
    messages = {p.message: p.line for p in problems}
    assert messages["missing clause H2"] == _line_of(text, "[clauses]")
    assert any("unknown key clauses.H9" in m for m in messages)


def test_a_missing_deadline_is_reported() -> None:
    text = _edit("[deadlines.D6]", "[deadlines.D8]")
    messages = [p.message for p in check_policy_text(text, "p.toml")]
    assert "missing deadline [deadlines.D6]" in messages


def test_a_string_where_days_must_be_an_integer_is_reported_on_its_line() -> None:
    text = _edit("default_days = 15", 'default_days = "15"')
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "default_days")
    assert problem.message == "windows.default_days must be a positive integer, not a string"


def test_a_boolean_is_not_accepted_as_a_number_of_days() -> None:
    text = _edit("[deadlines.D4]\ndays = 30", "[deadlines.D4]\ndays = true")
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "days = true")
    assert problem.message == "deadlines.D4.days must be a positive integer, not a boolean"


def test_zero_days_is_refused() -> None:
    text = _edit("protection_days_after_shipping = 60", "protection_days_after_shipping = 0")
    assert "positive integer, not 0" in _only_problem(text).message


def test_a_number_is_not_accepted_as_a_boolean() -> None:
    text = _edit(
        "change_of_mind_needs_seller_terms = true", "change_of_mind_needs_seller_terms = 1"
    )
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "change_of_mind_needs_seller_terms")
    assert "must be true or false" in problem.message


def test_an_unknown_reason_is_reported_at_its_item_in_a_multi_line_array() -> None:
    text = _edit(
        'seller_pays_reasons = ["damaged", "significantly_not_as_described"]',
        'seller_pays_reasons = [\n    "damaged",\n    "broken",\n]',
    )
    problem = _only_problem(text)
    assert (problem.line, problem.column) == (_line_of(text, '"broken"'), 5)
    assert "unknown reason 'broken'" in problem.message


def test_an_unknown_reason_in_the_evidence_checklist_is_reported() -> None:
    text = _edit("quality_issue = [", "quality_isue = [")
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "quality_isue")


def test_a_reason_without_a_remedy_is_reported() -> None:
    text = _edit(
        'partial_refund_reasons = ["not_as_described", "quality_issue"]',
        'partial_refund_reasons = ["not_as_described"]',
    )
    problem = _only_problem(text)
    assert "'quality_issue' has no remedy" in problem.message


def test_the_version_must_be_a_positive_integer() -> None:
    problem = _only_problem(_edit("version = 1", 'version = "1"'))
    assert problem.message == "version must be a positive integer, not a string"


def test_a_percent_above_100_is_refused_and_100_is_accepted() -> None:
    over = _edit("return_or_keep_threshold_percent = 30", "return_or_keep_threshold_percent = 101")
    full = _edit("return_or_keep_threshold_percent = 30", "return_or_keep_threshold_percent = 100")
    assert "0 to 100" in _only_problem(over).message
    assert check_policy_text(full, "p.toml") == []


@pytest.mark.parametrize("country", ['"USA"', '"us"', "1"])
def test_holiday_country_must_be_a_two_letter_code(country: str) -> None:
    problem = _only_problem(_edit('holiday_country = "US"', f"holiday_country = {country}"))
    assert problem.message.startswith("holiday_country must be a two-letter")


def test_a_missing_id_is_reported() -> None:
    assert _only_problem(_edit('id = "default"\n', "")).message == "missing id"


def test_category_windows_accept_quoted_keys_and_report_their_line() -> None:
    text = _edit("electronics = 30", 'electronics = 30\n"electronics/phones" = "long"')
    problem = _only_problem(text)
    assert problem.line == _line_of(text, '"electronics/phones" = ')
    assert 'windows.categories."electronics/phones"' in problem.message


def test_key_like_text_inside_a_multi_line_string_is_not_taken_for_a_key() -> None:
    text = _edit(
        'N1 = "Negotiation: offers go back and forth; '
        "accepting the other side's current offer ends the negotiation.\"",
        'N1 = """\nnot_a_key = 1\n"""\nN9 = "x"',
    )
    problem = _only_problem(text)
    assert problem.line == _line_of(text, "N9")


def test_problems_print_as_file_line_column_message() -> None:
    assert str(PolicyProblem("p.toml", 4, 2, "bad")) == "p.toml:4:2: bad"
    assert str(PolicyProblem("p.toml", 1, None, "bad")) == "p.toml:1: bad"
