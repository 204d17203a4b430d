"""Hot statements compiled once per dialect and run on the driver's own cursor.

SQLAlchemy Core builds, caches and runs a statement for ~60-170 µs of Python on this machine;
the driver runs the same SQL in ~9 µs (bench/RESULTS.md). The write path runs a dozen
statements per action, so its statements are declared here as ordinary Core statements (one
schema, both dialects) and compiled once per dialect: the SQL text, the order of its
parameters, and the same bind and result processors SQLAlchemy itself applies (UTC times,
JSON, booleans). They run inside the caller's transaction, on its connection.

A prepared statement names all its parameters with `bindparam` (or, for an INSERT, its
`columns`); it has no expanding `IN` lists. Anything else goes through `Connection.execute`.
An INSERT of many rows is sent as a few statements of many rows each (multi-row VALUES):
one round trip, and one statement for the server to run, per `ROWS_PER_INSERT` rows.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Connection, Insert
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None
ROWS_PER_INSERT = 500
_NAMED = re.compile(r"%\((\w+)\)s")  # a pyformat parameter, `%(name)s`


@dataclass(frozen=True)
class _ManyRows:
    """An INSERT as many rows at once: the SQL up to VALUES, one row's group of parameters
    (a format string taking their numbers), and where each of them is in the statement's
    own parameter order. On PostgreSQL the parameters are its own numbered ones ($1, $2...),
    sent as they are (psycopg's RawCursor): psycopg parses and caches only short statements."""

    head: str
    group: str
    order: tuple[int, ...]
    numbered: bool
    _sql: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, sql: str, names: tuple[str, ...], positional: bool) -> _ManyRows:
        head, group = sql.split(" VALUES ", 1)
        if positional:  # qmark: the group's `?` in `names` order, repeated as it is
            return cls(head, group, tuple(range(len(names))), numbered=False)
        order = tuple(names.index(name) for name in _NAMED.findall(group))
        group = group.replace("{", "{{").replace("}", "}}").replace("%%", "%")
        return cls(head, _NAMED.sub("${}", group), order, numbered=True)

    def sql(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            if self.numbered:
                width = len(self.order)
                groups = [
                    self.group.format(*range(r * width + 1, (r + 1) * width + 1))
                    for r in range(rows)
                ]
            else:
                groups = [self.group] * rows
            sql = self._sql[rows] = f"{self.head} VALUES {', '.join(groups)}"
        return sql

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
            many = _ManyRows.of(compiled.string, names, bool(compiled.positiontup))
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
        """Execute for each row (an INSERT: many rows per statement; else executemany);
        the number of rows changed in all."""
        form = self._form(conn.dialect)
        driver = conn.connection.driver_connection
        if form.many is None:
            cursor = driver.cursor()  # type: ignore[union-attr]
            cursor.executemany(form.sql, [self._bound(form, row) for row in rows])
            count: int = cursor.rowcount
            cursor.close()
            return count
        cursor = form.many.cursor(driver)
        count = 0
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            params = []
            for row in chunk:
                values = self._values(form, row)
                params += [values[at] for at in form.many.order]
            cursor.execute(form.many.sql(len(chunk)), params)
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

    def scalars(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        return [row[0] for row in self.all(conn, params)]

    @staticmethod
    def _row(form: _Form, raw: Sequence[Any]) -> Any:
        return form.row._make(
            value if process is None or value is None else process(value)
            for process, value in zip(form.results, raw, strict=True)
        )
