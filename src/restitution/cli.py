"""The `restitution` command. Each sub-command only translates between the shell and the code.

Add a command with `@app.command()` (serve, migrate, demo, ...) or a group with
`app.add_typer(group, name=...)`, as `policy` does.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import multiprocessing
import os
import signal
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from restitution import logs
from restitution.adapters.db.engine import Database
from restitution.adapters.db.engine import migrate as migrate_database
from restitution.bootstrap import SchemaOutOfDate, build_app, operator_key
from restitution.domain.eligibility import Verdict
from restitution.domain.errors import DomainError
from restitution.domain.money import Money
from restitution.domain.policy import Policy
from restitution.policies import PolicyError, default_policy, load_policy, parse_policy
from restitution.services.auth import mint_party_token
from restitution.services.context import App
from restitution.services.simulation import (
    NOT_MODELLED,
    CaseReplay,
    SimulationReport,
    simulate,
)
from restitution.settings import Settings

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
    policy = _checked_policy(file, exit_code=1)
    typer.echo(
        f"{file}: OK (policy {policy.id} version {policy.version}, "
        f"{len(policy.clauses)} clauses, {len(policy.deadlines)} deadlines)"
    )


def _checked_policy(file: Path, *, exit_code: int) -> Policy:
    """The policy in `file`; its problems printed as `policy check` prints them, then exit."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        typer.echo(f"{file}: cannot read: {error}", err=True)
        raise typer.Exit(exit_code) from error
    try:
        return parse_policy(text, str(file))
    except PolicyError as error:
        _print_problems(error)
        raise typer.Exit(exit_code) from error


@policy_app.command(
    "simulate",
    help=f"""Replay the stored cases under a DRAFT policy; show what it would change.

Newest first: each claimed line is judged again at the case's opening, under the
draft and under the policy the case was judged under (the active one, or an
--earlier document of that id and version; else the active one, and the report
says so), counting what other cases had already been granted on the line.
Reported: the cases the draft would refuse (with the refusing code and clause)
and what was granted or refunded on them, the cases it would now allow, and
changed refund caps (today a cap is what was paid for the line less what was
refunded: no policy setting moves it, so it changes only with eligibility);
money per currency, in minor units with --json.

Not modelled: {" ".join(NOT_MODELLED)}""",
)
def policy_simulate(
    draft_file: Path = typer.Argument(..., metavar="DRAFT", help="Draft policy (TOML)."),
    since: datetime | None = typer.Option(
        None,
        formats=["%Y-%m-%d"],
        metavar="YYYY-MM-DD",
        help="Only the cases opened on or after this day (UTC).",
    ),
    limit: int | None = typer.Option(
        None, min=1, metavar="N", help="At most this many cases (the newest)."
    ),
    earlier: list[Path] = typer.Option(
        [],
        "--earlier",
        metavar="FILE",
        help="An earlier policy document cases were judged under; repeatable.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    draft = _checked_policy(draft_file, exit_code=2)
    baselines = [_checked_policy(file, exit_code=2) for file in earlier]
    application = _build(_settings())
    try:
        report = simulate(
            application,
            draft,
            earlier=baselines,
            since=since.replace(tzinfo=UTC) if since else None,
            limit=limit,
        )
    finally:
        application.db.dispose()
    active = f"{application.policy.id} v{application.policy.version}"
    if as_json:
        _print_simulation_json(report, active)
    else:
        _print_simulation(report, active)


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


MAX_CASES_SHOWN = 100


def _print_simulation(report: SimulationReport, active: str) -> None:
    console = Console()
    console.print(
        Text(f"Replayed {report.replayed} cases under draft {report.draft}."), highlight=False
    )
    for judged_under, count in sorted(report.against_active.items()):
        console.print(
            Text(
                f"{count} cases judged under {judged_under}, not at hand (see --earlier): "
                f"compared with the active policy, {active}."
            ),
            highlight=False,
        )
    if report.baseline_refused:
        console.print(
            Text(
                f"{report.baseline_refused} cases are refused by the policy they are compared "
                "with (their order changed since, or that policy is not the one they were "
                "judged under): their opening is not reproduced."
            ),
            highlight=False,
        )
    if not report.changed:
        console.print(Text("The draft changes nothing in these cases."), highlight=False)
    else:
        _print_changed_cases(console, report.changed)
        totals = Table(title=Text("Totals per currency"))
        for column in ("currency", "refused", "granted on them", "allowed", "caps", "cap change"):
            totals.add_column(column, justify="left" if column == "currency" else "right")
        for currency, total in sorted(report.totals.items()):
            totals.add_row(
                Text(currency),
                Text(str(total.refused_cases)),
                Text(str(Money(total.refused_granted, currency))),
                Text(str(total.allowed_cases)),
                Text(str(total.cap_cases)),
                Text(str(Money(total.cap_change, currency))),
            )
        console.print(totals)
        for (code, clause), count in report.refusals.most_common():
            console.print(
                Text(f"{count} cases refused: {code} ({clause or 'no clause'})"), highlight=False
            )
    console.print(Text("Not modelled:"))
    for item in NOT_MODELLED:
        console.print(Text(f"- {item}"), highlight=False)


# Columns below which the changed cases are listed rather than tabled.
WIDE_ENOUGH_FOR_THE_TABLE = 120


def _print_changed_cases(console: Console, changed: list[CaseReplay]) -> None:
    """A table of the cases a draft changes; in a narrow terminal, where a table would
    squeeze what changed (its point) to nothing, a paragraph a case."""
    shown = changed[:MAX_CASES_SHOWN]
    more = f"… and {len(changed) - len(shown)} more: --json lists them all"
    if console.width < WIDE_ENOUGH_FOR_THE_TABLE:
        console.print(Text(f"{len(changed)} cases change:"), highlight=False)
        for result in shown:
            console.print(
                Text(
                    f"- {result.case_id} (opened {result.created_at.date().isoformat()}, "
                    f"{result.outcome or result.status}): {_describe_change(result)}; "
                    f"granted {result.granted}; cap {result.cap_before} → {result.cap_after}"
                ),
                highlight=False,
            )
        if len(changed) > len(shown):
            console.print(Text(more), highlight=False)
        return
    cases = Table(
        title=Text(f"{len(changed)} cases change"),
        caption=Text(more) if len(changed) > len(shown) else None,
    )
    for column in ("case", "opened", "status", "change", "granted", "cap"):
        wraps = column in ("change", "cap")
        cases.add_column(column, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for result in shown:
        cases.add_row(
            Text(result.case_id),
            Text(result.created_at.date().isoformat()),
            Text(result.outcome or result.status),
            Text(_describe_change(result)),
            Text(str(result.granted)),
            Text(f"{result.cap_before} → {result.cap_after}"),
        )
    console.print(cases)


def _describe_change(result: CaseReplay) -> str:
    if result.change == "refused" and result.refusal is not None:
        code, clause = result.refusal
        return f"refused: {code} ({clause})" if clause else f"refused: {code}"
    if result.change == "allowed":
        return "now allowed"
    return "cap changes"


def _print_simulation_json(report: SimulationReport, active: str) -> None:
    """One JSON object; its `cases` last, one a line, written as they go (100,000 cases
    held as one document took a gigabyte)."""
    head = {
        "draft": report.draft,
        "active": active,
        "replayed": report.replayed,
        "compared_with_active": dict(sorted(report.against_active.items())),
        "baseline_refused": report.baseline_refused,
        "totals": {
            currency: {
                "refused_cases": total.refused_cases,
                "refused_granted": total.refused_granted,
                "allowed_cases": total.allowed_cases,
                "cap_changed_cases": total.cap_cases,
                "cap_change": total.cap_change,
            }
            for currency, total in sorted(report.totals.items())
        },
        "refusals": [
            {"code": code, "clause": clause, "cases": count}
            for (code, clause), count in report.refusals.most_common()
        ],
        "not_modelled": list(NOT_MODELLED),
    }
    out = typer.get_text_stream("stdout")
    out.write(json.dumps(head)[:-1] + ', "cases": [')
    for number, result in enumerate(report.changed):
        out.write(("," if number else "") + "\n" + json.dumps(_case_json(result)))
    out.write("\n]}\n")


def _case_json(result: CaseReplay) -> dict[str, Any]:
    return {
        "case_id": result.case_id,
        "order_id": result.order_id,
        "opened_at": result.created_at.isoformat(),
        "status": result.status,
        "outcome": result.outcome,
        "judged_under": result.judged_under,
        "compared_with": result.baseline,
        "change": result.change,
        "refusal": (
            None
            if result.refusal is None
            else {"code": result.refusal[0], "clause": result.refusal[1]}
        ),
        "granted": result.granted.to_dict(),
        "cap_before": result.cap_before.to_dict(),
        "cap_after": result.cap_after.to_dict(),
        "lines": [
            {
                "line_id": line.line_id,
                "quantity": line.quantity,
                "before": _verdict_json(line.before),
                "after": _verdict_json(line.after),
            }
            for line in result.lines
        ],
    }


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "eligible": verdict.eligible,
        "code": verdict.code,
        "clauses": list(verdict.clause_ids),
        "max_refund": verdict.max_refund.to_dict(),
    }


# --------------------------------------------------------------------------- running


def _settings() -> Settings:
    """The settings from the environment; a bad one is named, with what it should be."""
    try:
        settings = Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = "RESTITUTION_" + "_".join(map(str, problem["loc"])).upper()
            typer.echo(f"{name}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_format, settings.log_level)
    return settings


def _build(settings: Settings, *, auto_migrate: bool | None = None) -> App:
    try:
        return build_app(settings, auto_migrate=auto_migrate)
    except SchemaOutOfDate as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    except PolicyError as error:
        _print_problems(error)
        raise typer.Exit(2) from error


@app.command()
def migrate() -> None:
    """Bring the database ($RESTITUTION_DATABASE_URL) to the current schema."""
    settings = _settings()
    db = Database(settings.database_url)
    try:
        migrate_database(db)
    finally:
        db.dispose()
    typer.echo(f"{_safe_url(settings.database_url)}: schema is current")


@app.command()
def demo() -> None:
    """Load the demo buyers, sellers, orders and cases (once)."""
    from restitution.services import demo as demo_data

    application = _build(_settings())
    loaded = demo_data.load(application)
    typer.echo("demo data loaded" if loaded else "demo data was already there")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    sweeper: bool = typer.Option(
        True,
        "--sweeper/--no-sweeper",
        help="Run the worker in-process (deadlines, reminders, refunds, webhooks, e-mail,"
        " unused uploads).",
    ),
    with_demo: bool = typer.Option(False, "--demo", help="Load demo data first (once)."),
) -> None:
    """Serve the API (and the background worker, unless --no-sweeper) on HOST:PORT."""
    # Imported here: the web application (and its server) is the heaviest import, and the
    # other commands (`orders import`, `worker`, ...) start faster without it.
    import uvicorn

    from restitution.api.app import create_api
    from restitution.services import demo as demo_data
    from restitution.services.worker import Worker

    settings = _settings()
    if settings.public_url == Settings.model_fields["public_url"].default:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    application = _build(settings)
    key, generated = operator_key(settings)
    if with_demo:
        demo_data.load(application)
    _print_welcome(application, key, generated, with_demo)
    # On SQLite the server writes on its event loop, and so does its worker's outbox.
    background = (
        Worker(application, outbox_on_event_loop=application.db.is_sqlite) if sweeper else None
    )
    on_event_loop = (
        background.run_on_event_loop if background and background.outbox_on_event_loop else None
    )
    api = create_api(application, key, on_event_loop=on_event_loop)
    keep_start_up_out_of_gc()
    if background is not None:
        background.start()
    try:
        uvicorn.run(api, host=host, port=port, log_level="warning")
    finally:
        if background is not None:
            background.stop()
        application.db.dispose()


def keep_start_up_out_of_gc() -> None:
    """What start-up made (modules, the policy, the app, compiled statements) lives as long as
    the process: keep it out of the garbage collector's full passes. Each pass over it took
    ~80 ms here (~156,000 objects), a stall of every request in flight (bench/RESULTS.md).
    Frozen objects are never collected: one of them left in a reference cycle later stays."""
    gc.collect()
    gc.freeze()


@app.command()
def worker(
    interval: float | None = typer.Option(
        None, help="Seconds to wait when idle (default $RESTITUTION_WORKER_INTERVAL_SECONDS or 5)."
    ),
    once: bool = typer.Option(False, help="Do one round of every loop and exit."),
) -> None:
    """Deadlines, reminders, refunds, webhooks, e-mail, unused uploads: as a separate process.

    Many workers may share one PostgreSQL; run `restitution migrate` before starting them.
    """
    from restitution.services.worker import Worker

    application = _build(_settings(), auto_migrate=False)
    background = Worker(application, interval)
    if once:
        done = background.run_once()
        typer.echo(
            f"one round done: {done.get('clock', 0)} clock steps (deadlines fired, reminders, "
            f"refund attempts, unused uploads deleted), {done.get('messages', 0)} messages "
            "(outbox events dispatched, webhook deliveries and e-mails sent)"
        )
        return
    typer.echo("worker running; Ctrl-C to stop")
    previous = signal.signal(signal.SIGTERM, lambda *_: background.request_stop())
    try:
        keep_start_up_out_of_gc()
        background.start()
        with contextlib.suppress(KeyboardInterrupt):
            background.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    application.db.dispose()


orders_app = typer.Typer(help="Orders pushed in bulk.", no_args_is_help=True)
app.add_typer(orders_app, name="orders")
MAX_BAD_LINES_SHOWN = 100


@orders_app.command("import")
def orders_import(
    file: Path = typer.Argument(
        ...,
        help="JSON Lines (one PUT /v1/orders body with its order_id "
        "a line) or CSV (one row per order line).",
    ),
    file_format: str | None = typer.Option(
        None, "--format", help="jsonl or csv (default: from the file's extension)."
    ),
    batch_size: int = typer.Option(10000, min=1, help="Orders written per transaction."),
    jobs: int = typer.Option(
        0, min=0, help="Processes validating orders (default: one per CPU; 1: in this one)."
    ),
) -> None:
    """Create or replace orders from FILE, each validated as PUT /v1/orders validates it.

    Bad orders are reported as FILE:LINE: message and skipped; the exit status is 1 if any.
    """
    # Imported here, as the other commands' own modules are imported in them: start-up is a
    # good part of importing a file.
    from restitution.api.order_import import BadOrder, chunks, parse_chunk
    from restitution.api.order_import import file_format as detect_format
    from restitution.services.orders import import_orders

    fmt = detect_format(file.name, file_format)
    if fmt not in ("jsonl", "csv"):
        typer.echo(f"error: --format is jsonl or csv, not {fmt!r}", err=True)
        raise typer.Exit(2)
    try:
        size = file.stat().st_size
        raw = file.open("rb")
    except OSError as error:
        typer.echo(f"{file}: cannot read: {error.strerror}", err=True)
        raise typer.Exit(1) from error
    jobs = jobs or os.cpu_count() or 1
    # Validation is the costly part: forked before the database is opened, the pool
    # validates and encodes chunks while this process writes the ones before.
    pool = (
        multiprocessing.get_context("fork").Pool(jobs, initializer=_ended_by_sigterm)
        if jobs > 1
        else None
    )
    application = _build(_settings())
    imported = bad = 0
    started = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]importing[/bold] {task.fields[orders]:,} orders"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    try:
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle, progress:
            task = progress.add_task("import", total=size, orders=0)
            source = chunks(
                handle,
                fmt,
                now=application.clock.now(),
                sqlite=application.db.is_sqlite,
                size=batch_size,
            )
            pending: deque[Any] = deque()
            while True:
                # Keep a few chunks in flight (in order), never the whole file in memory.
                while pool is not None and len(pending) < 2 * jobs:
                    chunk = next(source, None)
                    if chunk is None:
                        break
                    pending.append(pool.apply_async(parse_chunk, (chunk,)))
                if pool is not None:
                    if not pending:
                        break
                    batch = pending.popleft().get()
                else:
                    chunk = next(source, None)
                    if chunk is None:
                        break
                    batch = parse_chunk(chunk)
                problems = list(batch.bad)
                if batch.count:
                    refused = dict(
                        import_orders(
                            application,
                            batch.orders,
                            [order_id for _, order_id in batch.order_ids],
                            batch.contacts,
                        )
                    )
                    # Each refused order reported at its last line (the one that replaced it).
                    last_line = {order_id: line for line, order_id in batch.order_ids}
                    problems += [BadOrder(last_line[oid], why) for oid, why in refused.items()]
                    problems.sort(key=lambda problem: problem.line)
                    imported += sum(oid not in refused for _, oid in batch.order_ids)
                for problem in problems:
                    bad += 1
                    if bad <= MAX_BAD_LINES_SHOWN:
                        progress.console.print(
                            Text(f"{file}:{problem.line}: {problem.message}"),
                            highlight=False,
                            soft_wrap=True,
                        )
                progress.update(task, completed=raw.tell(), orders=imported)
            progress.update(task, completed=size)
    except UnicodeDecodeError as error:
        typer.echo(f"{file}: not UTF-8 text: {error}", err=True)
        raise typer.Exit(1) from error
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        application.db.dispose()
    elapsed = time.perf_counter() - started
    if bad > MAX_BAD_LINES_SHOWN:
        typer.echo(f"{file}: … and {bad - MAX_BAD_LINES_SHOWN} more bad orders", err=True)
    rate = imported / elapsed if elapsed > 0 else 0.0
    typer.echo(f"imported {imported} orders in {elapsed:.1f} s ({rate:,.0f}/s); {bad} bad, skipped")
    if bad:
        raise typer.Exit(1)


def _ended_by_sigterm() -> None:
    """A validating process ends when the pool is terminated, whatever handler of SIGTERM the
    process it was forked from had (one would keep it waiting for work, and the import with
    it)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


audit_app = typer.Typer(help="Verify the tamper-evident case histories.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(case_id: str | None = typer.Argument(None, help="One case; default all.")) -> None:
    """Recompute every hash chain; name the first broken link of each broken case."""
    from restitution.services import audit

    report = audit.verify(_build(_settings()), case_id)
    if case_id is not None and report.cases_checked == 0:
        typer.echo(f"no case {case_id}", err=True)
        raise typer.Exit(1)
    for link in report.broken:
        typer.echo(f"BROKEN {link.case_id} at event {link.seq} ({link.event_id}): {link.problem}")
    typer.echo(
        f"{report.cases_checked} cases, {report.events_checked} events checked, "
        f"{len(report.broken)} broken"
    )
    if report.broken:
        raise typer.Exit(1)


mediators_app = typer.Typer(help="Console logins for mediators.", no_args_is_help=True)
app.add_typer(mediators_app, name="mediators")


@mediators_app.command("add")
def mediators_add(
    login: str = typer.Argument(..., help="The login the mediator types in the console."),
    party_id: str = typer.Option(..., "--party-id", help="The mediator's party id, e.g. m_maria."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
    ),
) -> None:
    """Create a console login for a mediator; the password is stored as an argon2 hash."""
    # Imported here to keep CLI start-up fast: password hashing (argon2) is needed only here.
    from restitution.web.sessions import add_mediator

    application = _build(_settings())
    try:
        add_mediator(application, login, party_id, password)
    except DomainError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from error
    finally:
        application.db.dispose()
    typer.echo(f"mediator {party_id} can sign in to /console/login as {login!r}")


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _print_welcome(application: App, key: str, generated: bool, with_demo: bool) -> None:
    from restitution.services import demo as demo_data

    console = Console(soft_wrap=True)
    base = application.settings.public_url.rstrip("/")
    database = _safe_url(application.settings.database_url)
    console.print(f"[bold]Restitution[/bold] on {base}  (database {database})")
    console.print(f"  API docs:      {base}/docs")
    settings = application.settings
    if generated:
        console.print(f"  Operator key:  {key}   (generated now and kept in {settings.key_file})")
    elif with_demo:  # a try-out: the key is needed for the tour's first request
        console.print(f"  Operator key:  {key}")
    else:  # a deployment's logs are not the place for it
        where = "RESTITUTION_OPERATOR_KEY" if settings.operator_key else settings.key_file
        console.print(f"  Operator key:  from {where} (ends …{key[-4:]})")
    if with_demo:
        for role, party in (
            ("buyer", "b_alice"),
            ("seller", "s_gadgets"),
            ("mediator", demo_data.MEDIATOR),
        ):
            minted = mint_party_token(application, role, party, None)
            area = "console" if role == "mediator" else "portal"
            console.print(f"  {role:<9} {party:<10} {base}/{area}/login?token={minted.token}")
            console.print(f"  {'':<9} {'':<10} API token: {minted.token}")
