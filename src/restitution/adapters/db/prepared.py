"""Hot statements compiled once per dialect and run on the driver's own cursor.

SQLAlchemy Core builds, caches and runs a statement for ~60-170 µs of Python on this machine;
the driver runs the same SQL in ~9 µs (bench/RESULTS.md). The write path runs a dozen
statements per action, so its statements are declared here as ordinary Core statements (one
schema, both dialects) and compiled once per dialect: the SQL text, the order of its
parameters, and the same bind and result processors SQLAlchemy itself applies (UTC times,
JSON, booleans). They run inside the caller's transaction, on its connection.

A prepared statement names all its parameters with `bindparam` (or, for an INSERT, its
`columns`); it has no expanding `IN` lists. Anything else goes through `Connection.execute`.
Many rows of an INSERT (and, on PostgreSQL, of an UPDATE) are sent as statements of many
rows each (`run_many`). On SQLite, one per `ROWS_PER_STATEMENT` rows. On PostgreSQL, one for
all the rows, which travel as one JSON array (`json_to_recordset`): the statement's text is
the same whatever their number, so the server parses an INSERT once per connection, where a
VALUES list of hundreds of rows was parsed anew at each of the sweeper's batches; orjson
writes the array for less than the driver spent on as many parameters (bench/RESULTS.md,
round 8). Rows with a value JSON cannot carry go as parameters of a VALUES list, as on SQLite.
On PostgreSQL the few statements of one action (`run_together`, at most `ROWS_TOGETHER` rows,
VALUES lists whose text is the same for each kind of action) or of one read (`all_together`)
go in one round trip.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Json
from sqlalchemy import Connection, Insert, Update
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
ROWS_PER_STATEMENT = 500
# At most this many rows in all: `run_together` sends them to PostgreSQL in one round trip.
ROWS_TOGETHER = 50
_NAMED = re.compile(r"%\((\w+)\)s")  # a pyformat parameter, `%(name)s`
_PARAMETER = re.compile(r"%\((\w+)\)s(?:::[A-Z][A-Z ]*)?")  # a VALUES group's `%(name)s::TYPE`
_MODIFIERS = re.compile(r"\(.*?\)")  # a type's length, precision...


@dataclass(frozen=True)
class _Records:
    """On PostgreSQL, a statement for any number of rows, sent as one JSON array of objects
    (one per row, keyed by `names`, in the statement's parameter order `order`) that
    `json_to_recordset` turns back into typed rows. `prepare`: kept prepared on the server
    (an INSERT's plan is the same for any rows); an UPDATE's join is planned for each batch,
    as the tables grow."""

    sql: str
    names: tuple[str, ...]
    order: tuple[int, ...]
    prepare: bool

    @staticmethod
    def columns(typed: Sequence[tuple[str, str]]) -> str:
        return ", ".join(f'"{name}" {type_}' for name, type_ in typed)

    def payload(self, rows: Sequence[Sequence[Any]]) -> str | None:
        """The rows' values (as `Prepared._values` gives them) as one JSON array; None when
        a value is not plain JSON (bytes, an integer beyond 64 bits, a lone surrogate) or
        holds a NUL character: those rows go as parameters."""
        names, order = self.names, self.order
        records = [
            {name: _plain(values[at]) for name, at in zip(names, order, strict=True)}
            for values in rows
        ]
        try:
            payload = orjson.dumps(records, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return None
        # PostgreSQL's `json` keeps a NUL as written, `json_to_recordset` refuses it.
        return None if b"\\u0000" in payload else payload.decode()


def _plain(value: Any) -> Any:
    """A JSON column's value as the object itself (written inside the array), not wrapped."""
    return value.obj if isinstance(value, Json) else value


@dataclass(frozen=True)
class _ManyRows:
    """A statement for many rows at once: `head`, one group of parameters per row (a format
    string taking their numbers), `tail`; `order` is where each parameter of a group is in
    the statement's own parameter order. An INSERT takes multi-row VALUES; on PostgreSQL an
    UPDATE joins a VALUES list (`UPDATE t SET a = v.a FROM (VALUES ...) AS v WHERE ...`).
    On PostgreSQL the parameters are its own numbered ones ($1, $2...), sent as they are
    (psycopg's RawCursor): psycopg parses and caches only short statements. `records`: the
    same statement for rows sent as JSON (PostgreSQL), when every value is a typed parameter."""

    head: str
    group: str
    tail: str
    order: tuple[int, ...]
    numbered: bool
    records: _Records | None = None
    _sql: dict[int, str] = field(default_factory=dict)

    @classmethod
    def insert(
        cls, sql: str, names: tuple[str, ...], positional: bool, types: Mapping[str, str]
    ) -> _ManyRows:
        head, group = sql.split(" VALUES ", 1)
        if positional:  # qmark: the group's `?` in `names` order, repeated as it is
            return cls(f"{head} VALUES ", group, "", tuple(range(len(names))), numbered=False)
        order = tuple(names.index(name) for name in _NAMED.findall(group))
        items = [_PARAMETER.fullmatch(item) for item in group[1:-1].split(", ")]
        records = None
        used = tuple(item[1] for item in items if item)
        # Each value a typed parameter (no SQL default, no expression).
        if len(used) == len(items) and all(name in types for name in used):
            columns = _Records.columns([(name, types[name]) for name in used])
            records = _Records(
                f"{head} SELECT * FROM json_to_recordset($1::json) AS v({columns})",
                used,
                order,
                prepare=True,
            )
        group = group.replace("{", "{{").replace("}", "}}").replace("%%", "%")
        return cls(f"{head} VALUES ", _NAMED.sub("${}", group), "", order, True, records)

    @classmethod
    def update(cls, sql: str, names: tuple[str, ...], types: Mapping[str, str]) -> _ManyRows:
        """A pyformat UPDATE whose parameters become the columns of `v`."""
        if sql.count(" WHERE ") != 1:
            raise ValueError(f"a many-rows UPDATE needs one plain WHERE: {sql}")
        used = tuple(dict.fromkeys(_NAMED.findall(sql)))
        # Sent as they are (numbered parameters): pyformat's `%%` is a plain `%` again.
        changes, where = (
            _NAMED.sub(lambda name: f'v."{name[1]}"', sql).replace("%%", "%").split(" WHERE ", 1)
        )
        columns = ", ".join(f'"{name}"' for name in used)
        group = "({})".format(", ".join(f"${{}}::{types[name]}" for name in used))
        order = tuple(map(names.index, used))
        typed = _Records.columns([(name, types[name]) for name in used])
        return cls(
            f"{changes} FROM (VALUES ",
            group,
            f") AS v({columns}) WHERE {where}",
            order,
            numbered=True,
            records=_Records(
                f"{changes} FROM json_to_recordset($1::json) AS v({typed}) WHERE {where}",
                used,
                order,
                prepare=False,
            ),
        )

    def sql(self, rows: int, first: int = 1) -> str:
        """The statement for `rows` rows, its numbered parameters from `first` on. Only the
        full chunk's text is kept: every other count would be kept too, up to ~100 MB of SQL
        text in a long-running worker."""
        sql = self._sql.get(rows) if first == 1 else None
        if sql is None:
            if self.numbered:
                width = len(self.order)
                groups = [
                    self.group.format(*range(first + r * width, first + (r + 1) * width))
                    for r in range(rows)
                ]
            else:
                groups = [self.group] * rows
            sql = f"{self.head}{', '.join(groups)}{self.tail}"
            if rows == ROWS_PER_STATEMENT and first == 1:
                self._sql[rows] = sql
        return sql

    def execute(self, cursor: Any, rows: int, params: list[Any]) -> None:
        if self.numbered and rows != ROWS_PER_STATEMENT:
            # Not prepared on the server either: psycopg prepares a text run 5 times, and
            # would keep a prepared statement per row count on every connection.
            cursor.execute(self.sql(rows), params, prepare=False)
        else:
            cursor.execute(self.sql(rows), params)

    def cursor(self, driver: Any) -> Any:
        return psycopg.RawCursor(driver) if self.numbered else driver.cursor()


@dataclass(frozen=True)
class _Form:
    """A statement as one dialect runs it."""

    sql: str
    names: tuple[str, ...]  # parameter names, in the order a positional driver takes them
    positional: bool
    defaults: Mapping[str, Any]  # values the statement itself holds (LIMIT 1, literals)
    binds: Mapping[str, Processor]
    row: Any  # a namedtuple class for a SELECT's rows, else None
    results: tuple[Processor, ...]
    many: _ManyRows | None  # for an INSERT


class Prepared:
    """One Core statement, compiled on first use per dialect."""

    def __init__(self, statement: ClauseElement, *, columns: Sequence[str] = ()) -> None:
        if isinstance(statement, Insert):
            # Only the named columns, and no RETURNING of the generated key.
            statement = statement.inline()
        self.statement = statement
        self.columns = list(columns)
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = self._compile(dialect)
        return form

    def _compile(self, dialect: Dialect) -> _Form:
        compiled = self.statement.compile(
            dialect=dialect,
            column_keys=self.columns or None,
            compile_kwargs={"render_postcompile": True},
        )
        assert isinstance(compiled, SQLCompiler)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        names = tuple(compiled.positiontup or by_name)
        # Values the statement holds itself; every other parameter must be given.
        defaults = {
            name: bind.effective_value
            for name, bind in by_name.items()
            if not bind.required and (bind.value is not None or bind.callable is not None)
        }
        binds = {
            name: by_name[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        }
        row: Any = None
        results: tuple[Processor, ...] = ()
        selected: list[Any] = []
        if isinstance(self.statement, Select):
            selected = list(self.statement.selected_columns)
        elif isinstance(self.statement, UpdateBase):
            selected = list(self.statement.exported_columns)  # its RETURNING, if any
        if selected:
            row = namedtuple("Row", [column.key for column in selected])  # type: ignore[misc,no-redef]
            results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in selected
            )
        many = None
        if isinstance(self.statement, Insert):
            positional = bool(compiled.positiontup)
            types = {} if positional else _types(dialect, by_name)
            many = _ManyRows.insert(compiled.string, names, positional, types)
        elif isinstance(self.statement, Update) and not selected and not compiled.positiontup:
            many = _ManyRows.update(compiled.string, names, _types(dialect, by_name))
        return _Form(
            compiled.string,
            names,
            bool(compiled.positiontup),
            defaults,
            binds,
            row,
            results,
            many,
        )

    @staticmethod
    def _values(form: _Form, params: Mapping[str, Any]) -> list[Any]:
        """The parameters' values as the driver takes them, in `form.names` order."""
        values = []
        for name in form.names:
            value = params[name] if name in params else form.defaults[name]
            process = form.binds[name]
            values.append(value if process is None or value is None else process(value))
        return values

    @classmethod
    def _bound(cls, form: _Form, params: Mapping[str, Any]) -> Any:
        values = cls._values(form, params)
        return values if form.positional else dict(zip(form.names, values, strict=True))

    def _cursor(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Form]:
        form = self._form(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(form.sql, self._bound(form, params))
        return cursor, form

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Execute; the number of rows it changed."""
        cursor, _ = self._cursor(conn, params or {})
        count: int = cursor.rowcount
        cursor.close()
        return count

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute for each row (many rows per statement where `_ManyRows` can, else
        executemany); the number of rows changed in all."""
        form = self._form(conn.dialect)
        driver = conn.connection.driver_connection
        if form.many is None:
            cursor = driver.cursor()  # type: ignore[union-attr]
            cursor.executemany(form.sql, [self._bound(form, row) for row in rows])
            count: int = cursor.rowcount
            cursor.close()
            return count
        values = [self._values(form, row) for row in rows]
        records = form.many.records
        payload = records.payload(values) if records is not None else None
        cursor = form.many.cursor(driver)
        if records is not None and payload is not None:
            cursor.execute(records.sql, [payload], prepare=None if records.prepare else False)
            count = cursor.rowcount
        else:
            count = 0
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = values[start : start + ROWS_PER_STATEMENT]
                params = [row[at] for row in chunk for at in form.many.order]
                form.many.execute(cursor, len(chunk), params)
                count += cursor.rowcount
        cursor.close()
        return count

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        cursor, form = self._cursor(conn, params or {})
        rows = cursor.fetchall()
        cursor.close()
        return [self._row(form, row) for row in rows]

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        cursor, form = self._cursor(conn, params or {})
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else self._row(form, row)

    async def all_async(
        self, conn: Any, dialect: Dialect, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """`all` on an async driver connection (psycopg's `AsyncConnection`) of `dialect`."""
        form = self._form(dialect)
        async with conn.cursor() as cursor:
            await cursor.execute(form.sql, self._bound(form, params or {}))
            rows = await cursor.fetchall()
        return [self._row(form, row) for row in rows]

    def scalars(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        return [row[0] for row in self.all(conn, params)]

    @staticmethod
    def _row(form: _Form, raw: Sequence[Any]) -> Any:
        return form.row._make(
            value if process is None or value is None else process(value)
            for process, value in zip(form.results, raw, strict=True)
        )


def _types(dialect: Dialect, binds: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter's SQL type, without a length: a cast to VARCHAR(n) would cut a longer
    value silently."""
    compile_type = dialect.type_compiler_instance.process
    return {
        name: _MODIFIERS.sub("", compile_type(bind.type.dialect_impl(dialect)))
        for name, bind in binds.items()
        if not bind.type._isnull  # untyped: such an INSERT's rows go as parameters
    }


def run_together(
    conn: Connection, work: Sequence[tuple[Prepared, Sequence[Mapping[str, Any]]]]
) -> list[int]:
    """Run each statement for its rows, in order; the number of rows each changed.

    On PostgreSQL, with two to `ROWS_TOGETHER` rows in all, as ONE statement: each
    statement's rows (an INSERT or UPDATE of many rows, `_ManyRows`) a data-modifying `WITH`
    query, the main query counting their rows. A round trip cost this process ~25 µs of
    CPU, half of it the kernel's, and the server about as much (bench/RESULTS.md), more than
    a small statement itself; and one statement is parsed and planned once (psycopg prepares
    a text run a few times on the server, at most `prepared_max` per connection; an action
    of one kind always sends the same text).
    The parts of one statement see the same snapshot, not each other's rows (each action
    writes each row once: `Repository.batched_writes`); foreign keys are checked at its end.
    Otherwise each statement runs on its own, for all its rows at once (`run_many`; SQLite
    is in process; a single row keeps the statement the server has prepared).
    """
    total = sum(len(rows) for _, rows in work)
    if conn.dialect.name != "postgresql" or not 1 < total <= ROWS_TOGETHER:
        return [_run_rows(conn, statement, rows) for statement, rows in work]
    parts: list[str] = []
    params: list[Any] = []
    for statement, rows in work:
        if not rows:
            continue
        form = statement._form(conn.dialect)
        if form.many is None:
            raise ValueError(f"not an INSERT or UPDATE of many rows: {form.sql}")
        parts.append(f"w{len(parts)} AS ({form.many.sql(len(rows), len(params) + 1)} RETURNING 1)")
        for row in rows:
            values = statement._values(form, row)
            params += [values[at] for at in form.many.order]
    counted = ", ".join(f"(SELECT count(*) FROM w{n})" for n in range(len(parts)))
    cursor = psycopg.RawCursor(conn.connection.driver_connection)  # type: ignore[arg-type]
    cursor.execute(f"WITH {', '.join(parts)} SELECT {counted}", params)
    found = iter(cursor.fetchone() or ())
    cursor.close()
    return [next(found) if rows else 0 for _, rows in work]


def all_together(
    conn: Connection, reads: Sequence[tuple[Prepared, Mapping[str, Any]]]
) -> list[list[Any]]:
    """The rows of each read, in order. On PostgreSQL in one round trip: the statements as
    one message, each with its values as literals (psycopg's own quoting,
    `ClientCursor.mogrify`)."""
    if conn.dialect.name != "postgresql":
        return [statement.all(conn, params) for statement, params in reads]
    cursor = psycopg.ClientCursor(conn.connection.driver_connection)  # type: ignore[arg-type]
    script = []
    for statement, params in reads:
        form = statement._form(conn.dialect)
        script.append(cursor.mogrify(form.sql, statement._bound(form, params)))
    cursor.execute(";\n".join(script))
    found = []
    for statement, _ in reads:
        form = statement._form(conn.dialect)
        found.append([statement._row(form, raw) for raw in cursor.fetchall()])
        cursor.nextset()
    cursor.close()
    return found


def _run_rows(conn: Connection, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> int:
    if not rows:
        return 0
    return statement.run(conn, rows[0]) if len(rows) == 1 else statement.run_many(conn, rows)
