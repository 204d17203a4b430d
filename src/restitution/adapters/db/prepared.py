"""Hot statements compiled once per dialect and run on the driver's own cursor.

SQLAlchemy Core builds, caches and runs a statement for ~60-170 µs of Python on this machine;
the driver runs the same SQL in ~9 µs (bench/RESULTS.md). The write path runs a dozen
statements per action, so its statements are declared here as ordinary Core statements (one
schema, both dialects) and compiled once per dialect: the SQL text, the order of its
parameters, and the same bind and result processors SQLAlchemy itself applies (UTC times,
JSON, booleans). They run inside the caller's transaction, on its connection.

A prepared statement names all its parameters with `bindparam` (or, for an INSERT, its
`columns`); it has no expanding `IN` lists. Anything else goes through `Connection.execute`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


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
        return _Form(
            compiled.string,
            names,
            bool(compiled.positiontup),
            defaults,
            binds,
            row,
            results,
        )

    @staticmethod
    def _bound(form: _Form, params: Mapping[str, Any]) -> Any:
        values = []
        for name in form.names:
            value = params[name] if name in params else form.defaults[name]
            process = form.binds[name]
            values.append(value if process is None or value is None else process(value))
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

    def run_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
        """Execute once per row (executemany); the number of rows changed in all."""
        form = self._form(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(form.sql, [self._bound(form, row) for row in rows])
        count: int = cursor.rowcount
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
