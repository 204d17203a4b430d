"""Load a policy TOML document into a `Policy`, or say exactly which lines are wrong.

Every problem carries the line (and column when known) of the key, value item or table
that causes it, so `restitution policy check` reads like a compiler's error list.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import holidays

from restitution.domain.policy import (
    CLAUSE_IDS,
    DEADLINE_IDS,
    REASONS,
    Clause,
    DeadlineRule,
    Policy,
)
from restitution.policies.locate import KeyPath, Locator

DEFAULT_POLICY_RESOURCE = "default.toml"

_SYNTAX_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_SYNTAX_AT_END = re.compile(r"\s*\(at end of document\)$")
_COUNTRY = re.compile(r"[A-Z]{2}")

_ROOT_KEYS = (
    "id", "version", "holiday_country", "windows", "remedies", "return_shipping",
    "non_returnable", "evidence", "escalation", "refunds", "advice", "clauses", "deadlines",
)  # fmt: skip


@dataclass(frozen=True)
class PolicyProblem:
    source: str
    line: int
    column: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}"
        if self.column is not None:
            where += f":{self.column}"
        return f"{where}: {self.message}"


class PolicyError(Exception):
    """A policy document that cannot be used; `problems` lists every reason, in line order."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def check_policy_text(text: str, source_name: str) -> list[PolicyProblem]:
    """Every problem of a policy document; an empty list means it loads."""
    return _read(text, source_name)[1]


def parse_policy(text: str, source_name: str) -> Policy:
    policy, problems = _read(text, source_name)
    if policy is None:
        raise PolicyError(problems)
    return policy


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    return parse_policy(path.read_text(encoding="utf-8"), str(path))


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The built-in policy (the seed's rules), shipped inside the package."""
    resource = importlib.resources.files(__package__ or "restitution.policies")
    text = resource.joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")
    return parse_policy(text, f"<built-in {DEFAULT_POLICY_RESOURCE}>")


def _read(text: str, source: str) -> tuple[Policy | None, list[PolicyProblem]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return None, [_syntax_problem(error, text, source)]
    reader = _Reader(Locator(text), source)
    policy = reader.policy(data)
    problems = sorted(reader.problems, key=lambda p: (p.line, p.column or 0))
    return (None if problems else policy), problems


def _syntax_problem(error: tomllib.TOMLDecodeError, text: str, source: str) -> PolicyProblem:
    message = str(error)
    match = _SYNTAX_POSITION.search(message)
    if match is not None:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[: match.start()]
    else:
        line, column = max(1, len(text.splitlines())), None
        message = _SYNTAX_AT_END.sub(" at end of document", message)
    return PolicyProblem(source, line, column, f"TOML syntax error: {message}")


def _dotted(path: KeyPath) -> str:
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"' for part in path)


def _malformed_category(name: str) -> bool:
    return not name or name.startswith("/") or name.endswith("/") or "//" in name


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"{value}"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


class _Reader:
    """Reads the parsed document into a `Policy`, collecting problems instead of stopping."""

    def __init__(self, locator: Locator, source: str) -> None:
        self.locator = locator
        self.source = source
        self.problems: list[PolicyProblem] = []

    def report(self, path: KeyPath, message: str) -> None:
        line, column = self.locator.nearest(path)
        self.problems.append(PolicyProblem(self.source, line, column, message))

    def report_item(self, path: KeyPath, item: str, message: str) -> None:
        line, column = self.locator.value_item(path, item)
        self.problems.append(PolicyProblem(self.source, line, column, message))

    # -- tables ---------------------------------------------------------------------------

    def table(
        self, parent: Mapping[str, object], path: KeyPath, allowed: Iterable[str] | None
    ) -> dict[str, object]:
        value = parent.get(path[-1]) if path else parent
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(path, f"{_dotted(path)} must be a table, not {_describe(value)}")
            return {}
        if allowed is not None:
            self.reject_unknown(value, path, tuple(allowed))
        return value

    def reject_unknown(
        self, table: Mapping[str, object], path: KeyPath, allowed: tuple[str, ...]
    ) -> None:
        for key, value in table.items():
            if key in allowed:
                continue
            kind = "table" if isinstance(value, dict) else "key"
            message = f"unknown {kind} {_dotted((*path, key))}"
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
            self.report((*path, key), message)

    # -- scalars --------------------------------------------------------------------------

    def positive_int(self, table: Mapping[str, object], path: KeyPath, default: int) -> int:
        value = table.get(path[-1])
        if value is None:
            return default
        if type(value) is not int or value < 1:
            self.report(path, f"{_dotted(path)} must be a positive integer, not {_describe(value)}")
            return default
        return value

    def non_negative_int(self, table: Mapping[str, object], path: KeyPath, default: int) -> int:
        value = table.get(path[-1])
        if value is None:
            return default
        if type(value) is not int or value < 0:
            self.report(
                path, f"{_dotted(path)} must be an integer of 0 or more, not {_describe(value)}"
            )
            return default
        return value

    def percent(self, table: Mapping[str, object], path: KeyPath, default: int) -> int:
        value = table.get(path[-1])
        if value is None:
            return default
        if type(value) is not int or not 0 <= value <= 100:
            self.report(
                path,
                f"{_dotted(path)} must be a whole percent from 0 to 100, not {_describe(value)}",
            )
            return default
        return value

    def boolean(self, table: Mapping[str, object], path: KeyPath, default: bool) -> bool:
        value = table.get(path[-1])
        if value is None:
            return default
        if type(value) is not bool:
            self.report(path, f"{_dotted(path)} must be true or false, not {_describe(value)}")
            return default
        return value

    def text(self, table: Mapping[str, object], path: KeyPath, *, required: bool) -> str:
        value = table.get(path[-1])
        if value is None:
            if required:
                self.report(path, f"missing {_dotted(path)}")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.report(path, f"{_dotted(path)} must be a non-empty string, not {_describe(value)}")
            return ""
        return value

    def strings(
        self, table: Mapping[str, object], path: KeyPath, default: Iterable[str]
    ) -> tuple[str, ...]:
        value = table.get(path[-1])
        if value is None:
            return tuple(default)
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item.strip() for item in value
        ):
            self.report(path, f"{_dotted(path)} must be an array of non-empty strings")
            return tuple(default)
        seen: set[str] = set()
        for item in value:
            if item in seen:
                self.report_item(path, item, f"{item!r} is listed twice in {_dotted(path)}")
            seen.add(item)
        return tuple(value)

    def reasons(
        self, table: Mapping[str, object], path: KeyPath, default: frozenset[str]
    ) -> frozenset[str]:
        names = self.strings(table, path, sorted(default))
        known = [name for name in names if self.known_reason(path, name, as_item=True)]
        return frozenset(known)

    def known_reason(self, path: KeyPath, name: str, *, as_item: bool) -> bool:
        if name in REASONS:
            return True
        message = f"unknown reason {name!r} in {_dotted(path)}; reasons are {', '.join(REASONS)}"
        if as_item:
            self.report_item(path, name, message)
        else:
            self.report((*path, name), message)
        return False

    def categories(self, names: Iterable[str], path: KeyPath) -> None:
        for name in names:
            if _malformed_category(name):
                self.report_item(path, name, f"category {name!r} in {_dotted(path)} is malformed")

    # -- the document ---------------------------------------------------------------------

    def policy(self, data: Mapping[str, object]) -> Policy:
        defaults = Policy(id="", version=0, clauses={}, deadlines={})
        self.reject_unknown(data, (), _ROOT_KEYS)
        policy_id = self.text(data, ("id",), required=True)
        version = data.get("version")
        if version is None:
            self.report(("version",), "missing version")
        elif type(version) is not int or version < 1:
            self.report(
                ("version",), f"version must be a positive integer, not {_describe(version)}"
            )
        holiday_country = self.country(data, defaults.holiday_country)

        windows = self.table(
            data, ("windows",), ("default_days", "categories", "protection_days_after_shipping")
        )
        category_windows = self.category_windows(windows, defaults.category_windows)
        remedies = self.table(
            data,
            ("remedies",),
            ("full_refund_reasons", "partial_refund_reasons", "change_of_mind_needs_seller_terms"),
        )
        full = self.reasons(
            remedies, ("remedies", "full_refund_reasons"), defaults.full_refund_reasons
        )
        partial = self.reasons(
            remedies, ("remedies", "partial_refund_reasons"), defaults.partial_refund_reasons
        )
        self.remedy_sets(remedies, full, partial)
        shipping = self.table(
            data, ("return_shipping",), ("seller_pays_reasons", "max_reimbursement")
        )
        non_returnable = self.table(
            data,
            ("non_returnable",),
            ("hygiene_categories", "hygiene_exempt_reasons", "custom_made_exempt_reasons"),
        )
        hygiene_path = ("non_returnable", "hygiene_categories")
        hygiene_categories = self.strings(non_returnable, hygiene_path, defaults.hygiene_categories)
        self.categories(hygiene_categories, hygiene_path)
        evidence = self.table(data, ("evidence",), ("required_reasons", "checklist"))
        escalation = self.table(
            data, ("escalation",), ("after_seller_answer", "when_seller_overdue")
        )
        refunds = self.table(data, ("refunds",), ("default_business_days", "business_days"))
        advice = self.table(
            data,
            ("advice",),
            (
                "return_or_keep_threshold_percent",
                "reminder_hours_before_deadline",
                "window_reminder_hours",
            ),
        )

        return Policy(
            id=policy_id,
            version=version if type(version) is int else 0,
            clauses=self.clauses(data),
            deadlines=self.deadlines(data),
            return_window_days=self.positive_int(
                windows, ("windows", "default_days"), defaults.return_window_days
            ),
            category_windows=category_windows,
            protection_days_after_shipping=self.positive_int(
                windows,
                ("windows", "protection_days_after_shipping"),
                defaults.protection_days_after_shipping,
            ),
            full_refund_reasons=full,
            partial_refund_reasons=partial,
            change_of_mind_needs_seller_terms=self.boolean(
                remedies,
                ("remedies", "change_of_mind_needs_seller_terms"),
                defaults.change_of_mind_needs_seller_terms,
            ),
            seller_pays_return_reasons=self.reasons(
                shipping,
                ("return_shipping", "seller_pays_reasons"),
                defaults.seller_pays_return_reasons,
            ),
            max_return_postage_reimbursement=self.non_negative_int(
                shipping,
                ("return_shipping", "max_reimbursement"),
                defaults.max_return_postage_reimbursement,
            ),
            hygiene_categories=hygiene_categories,
            hygiene_exempt_reasons=self.reasons(
                non_returnable,
                ("non_returnable", "hygiene_exempt_reasons"),
                defaults.hygiene_exempt_reasons,
            ),
            custom_made_exempt_reasons=self.reasons(
                non_returnable,
                ("non_returnable", "custom_made_exempt_reasons"),
                defaults.custom_made_exempt_reasons,
            ),
            evidence_required_reasons=self.reasons(
                evidence, ("evidence", "required_reasons"), defaults.evidence_required_reasons
            ),
            evidence_checklist=self.checklist(evidence),
            escalate_after_seller_answer=self.boolean(
                escalation,
                ("escalation", "after_seller_answer"),
                defaults.escalate_after_seller_answer,
            ),
            escalate_when_seller_overdue=self.boolean(
                escalation,
                ("escalation", "when_seller_overdue"),
                defaults.escalate_when_seller_overdue,
            ),
            refund_business_days=self.refund_days(refunds, defaults.refund_business_days),
            refund_business_days_default=self.positive_int(
                refunds,
                ("refunds", "default_business_days"),
                defaults.refund_business_days_default,
            ),
            holiday_country=holiday_country,
            reminder_hours_before_deadline=self.positive_int(
                advice,
                ("advice", "reminder_hours_before_deadline"),
                defaults.reminder_hours_before_deadline,
            ),
            window_reminder_hours=self.positive_int(
                advice, ("advice", "window_reminder_hours"), defaults.window_reminder_hours
            ),
            return_or_keep_threshold_percent=self.percent(
                advice,
                ("advice", "return_or_keep_threshold_percent"),
                defaults.return_or_keep_threshold_percent,
            ),
        )

    def country(self, data: Mapping[str, object], default: str) -> str:
        value = data.get("holiday_country")
        if value is None:
            return default
        if not isinstance(value, str) or _COUNTRY.fullmatch(value) is None:
            shown = repr(value) if isinstance(value, str) else _describe(value)
            self.report(
                ("holiday_country",),
                f"holiday_country must be a two-letter upper-case country code such as 'US', "
                f"not {shown}",
            )
            return default
        if value not in holidays.list_supported_countries():
            self.report(
                ("holiday_country",),
                f"holiday_country {value!r} has no public-holiday calendar in the holidays package",
            )
        return value

    def category_windows(
        self, windows: Mapping[str, object], default: Mapping[str, int]
    ) -> Mapping[str, int]:
        path = ("windows", "categories")
        if "categories" not in windows:
            return MappingProxyType(dict(default))
        table = self.table(windows, path, None)
        result: dict[str, int] = {}
        for category, days in table.items():
            key_path = (*path, category)
            if _malformed_category(category):
                self.report(key_path, f"category {category!r} in {_dotted(path)} is malformed")
                continue
            if type(days) is not int or days < 1:
                self.report(
                    key_path,
                    f"{_dotted(key_path)} must be a positive integer, not {_describe(days)}",
                )
                continue
            result[category] = days
        return MappingProxyType(result)

    def remedy_sets(
        self, remedies: Mapping[str, object], full: frozenset[str], partial: frozenset[str]
    ) -> None:
        full_path = ("remedies", "full_refund_reasons")
        partial_path = ("remedies", "partial_refund_reasons")
        where = full_path if "full_refund_reasons" in remedies else partial_path
        for reason in sorted(full & partial):
            self.report_item(
                partial_path if "partial_refund_reasons" in remedies else where,
                reason,
                f"{reason!r} is in both full_refund_reasons (R1) and partial_refund_reasons (R2)",
            )
        if "changed_mind" in full | partial:
            path = full_path if "changed_mind" in full else partial_path
            self.report_item(
                path, "changed_mind", "changed_mind is governed by R3 and belongs to no remedy list"
            )
        for reason in REASONS:
            if reason != "changed_mind" and reason not in full | partial:
                self.report(
                    where,
                    f"reason {reason!r} has no remedy: list it in full_refund_reasons (R1) "
                    "or partial_refund_reasons (R2)",
                )

    def checklist(self, evidence: Mapping[str, object]) -> Mapping[str, tuple[str, ...]]:
        path = ("evidence", "checklist")
        table = self.table(evidence, path, None)
        result: dict[str, tuple[str, ...]] = {}
        for reason in table:
            if self.known_reason(path, reason, as_item=False):
                result[reason] = self.strings(table, (*path, reason), ())
        return MappingProxyType(result)

    def refund_days(
        self, refunds: Mapping[str, object], default: Mapping[str, int]
    ) -> Mapping[str, int]:
        path = ("refunds", "business_days")
        if "business_days" not in refunds:
            return MappingProxyType(dict(default))
        table = self.table(refunds, path, None)
        return MappingProxyType(
            {method: self.positive_int(table, (*path, method), 0) for method in table}
        )

    def clauses(self, data: Mapping[str, object]) -> Mapping[str, Clause]:
        path = ("clauses",)
        if "clauses" not in data:
            self.report(path, f"missing [clauses] table with the texts of {', '.join(CLAUSE_IDS)}")
            return MappingProxyType({})
        table = self.table(data, path, CLAUSE_IDS)
        result: dict[str, Clause] = {}
        for clause_id in CLAUSE_IDS:
            if clause_id not in table:
                self.report(path, f"missing clause {clause_id}")
                continue
            result[clause_id] = Clause(
                clause_id, self.text(table, (*path, clause_id), required=True)
            )
        return MappingProxyType(result)

    def deadlines(self, data: Mapping[str, object]) -> Mapping[str, DeadlineRule]:
        path = ("deadlines",)
        if "deadlines" not in data:
            self.report(path, f"missing [deadlines] tables {', '.join(DEADLINE_IDS)}")
            return MappingProxyType({})
        table = self.table(data, path, DEADLINE_IDS)
        result: dict[str, DeadlineRule] = {}
        for deadline_id in DEADLINE_IDS:
            rule_path = (*path, deadline_id)
            if deadline_id not in table:
                self.report(rule_path, f"missing deadline [deadlines.{deadline_id}]")
                continue
            rule = self.table(table, rule_path, ("days", "text", "business_days"))
            if "days" not in rule:
                self.report(rule_path, f"missing {_dotted((*rule_path, 'days'))}")
            result[deadline_id] = DeadlineRule(
                id=deadline_id,
                text=self.text(rule, (*rule_path, "text"), required=True),
                days=self.positive_int(rule, (*rule_path, "days"), 0),
                business_days=self.boolean(rule, (*rule_path, "business_days"), False),
            )
        return MappingProxyType(result)
