"""The `restitution` command. Each sub-command only translates between the shell and the code.

Add a command with `@app.command()` (serve, migrate, demo, ...) or a group with
`app.add_typer(group, name=...)`, as `policy` does.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from restitution.domain.policy import Policy
from restitution.policies import PolicyError, default_policy, load_policy, parse_policy

app = typer.Typer(
    name="restitution",
    no_args_is_help=True,
    add_completion=False,
)

policy_app = typer.Typer(help="Show and check policy documents.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@app.callback()
def main() -> None:
    """Restitution: a self-hosted buyer-protection engine for online marketplaces."""


@policy_app.command("show")
def policy_show(
    file: Path | None = typer.Option(
        None,
        "--file",
        "-f",
        envvar="RESTITUTION_POLICY",
        help="Policy document to show (default: $RESTITUTION_POLICY, else the built-in policy).",
    ),
) -> None:
    """Print the active policy: every clause and deadline."""
    try:
        policy = default_policy() if file is None else load_policy(file)
    except PolicyError as error:
        _print_problems(error)
        raise typer.Exit(1) from error
    except OSError as error:
        typer.echo(f"{file}: cannot read: {error.strerror}", err=True)
        raise typer.Exit(1) from error
    source = "built-in default" if file is None else str(file)
    Console().print(_policy_table(policy, source))


@policy_app.command("check")
def policy_check(
    file: Path = typer.Argument(..., help="Policy document (TOML) to check."),
) -> None:
    """Check a policy document; print FILE:LINE:COL: message for each problem."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"{file}: cannot read: {error}", err=True)
        raise typer.Exit(1) from error
    try:
        policy = parse_policy(text, str(file))
    except PolicyError as error:
        _print_problems(error)
        raise typer.Exit(1) from error
    typer.echo(
        f"{file}: OK (policy {policy.id} version {policy.version}, "
        f"{len(policy.clauses)} clauses, {len(policy.deadlines)} deadlines)"
    )


def _print_problems(error: PolicyError) -> None:
    for problem in error.problems:
        typer.echo(str(problem))


def _policy_table(policy: Policy, source: str) -> Table:
    table = Table(
        title=Text(f"Policy {policy.id} version {policy.version}"),
        caption=Text(f"from {source}"),
    )
    table.add_column("id", no_wrap=True)
    table.add_column("duration", no_wrap=True)
    table.add_column("text")
    for clause in policy.clauses.values():
        table.add_row(Text(clause.id), Text(""), Text(clause.text))
    for rule in policy.deadlines.values():
        unit = "business day" if rule.business_days else "day"
        duration = f"{rule.days} {unit}{'' if rule.days == 1 else 's'}"
        table.add_row(Text(rule.id), Text(duration), Text(rule.text))
    return table
