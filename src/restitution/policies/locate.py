"""Where each key of a TOML document is written, so problems can point at their line.

`tomllib` gives values but no positions; this scanner reads the text once and records, for
every table header and every `key = value`, its line and column and the last line of its
value. It understands comments, all four string forms and multi-line arrays and inline
tables, which is all it needs to tell a key from text that merely looks like one.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Position:
    line: int
    column: int
    end_line: int


class Locator:
    """Maps a key path such as `("windows", "categories", "electronics")` to its position."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._positions = _scan(self._lines)

    def find(self, path: KeyPath) -> Position | None:
        return self._positions.get(path)

    def nearest(self, path: KeyPath) -> tuple[int, int | None]:
        """The key's line and column; for a missing key, its closest written ancestor's."""
        for length in range(len(path), 0, -1):
            position = self._positions.get(path[:length])
            if position is not None:
                return position.line, position.column
        return 1, None

    def value_item(self, path: KeyPath, item: str) -> tuple[int, int | None]:
        """The line and column of the string `item` inside the value of `path`."""
        position = self._positions.get(path)
        if position is None:
            return self.nearest(path)
        for quoted in (f'"{item}"', f"'{item}'"):
            for number in range(position.line, position.end_line + 1):
                column = self._lines[number - 1].find(quoted)
                if column >= 0:
                    return number, column + 1
        return position.line, position.column


def _scan(lines: list[str]) -> dict[KeyPath, Position]:
    positions: dict[KeyPath, Position] = {}
    table: KeyPath = ()
    open_key: KeyPath | None = None
    open_start = (0, 0)
    state = _ValueState()
    for number, line in enumerate(lines, start=1):
        start = 0
        if state.closed:
            stripped = line.lstrip()
            column = len(line) - len(stripped) + 1
            if stripped.startswith("["):
                header = _parse_header(stripped)
                if header is not None:
                    table = header
                    positions[table] = Position(number, column, number)
                continue
            parsed = _parse_key(stripped)
            if parsed is None:
                continue
            key, consumed = parsed
            open_key = table + key
            open_start = (number, column)
            start = column - 1 + consumed
        state.feed(line, start)
        if open_key is not None and state.closed:
            positions[open_key] = Position(open_start[0], open_start[1], number)
            open_key = None
    if open_key is not None:
        positions[open_key] = Position(open_start[0], open_start[1], len(lines))
    return positions


def _parse_header(text: str) -> KeyPath | None:
    inner = text[2:] if text.startswith("[[") else text[1:]
    parsed = _parse_key_parts(inner)
    if parsed is None:
        return None
    return parsed[0]


def _parse_key(text: str) -> tuple[KeyPath, int] | None:
    """A `key = ` at the start of `text`: the key path and the characters up to after `=`."""
    parsed = _parse_key_parts(text)
    if parsed is None:
        return None
    key, index = parsed
    if index >= len(text) or text[index] != "=":
        return None
    return key, index + 1


def _parse_key_parts(text: str) -> tuple[KeyPath, int] | None:
    parts: list[str] = []
    index = 0
    while True:
        index = _skip_blanks(text, index)
        part = _read_key_part(text, index)
        if part is None:
            return None
        value, index = part
        parts.append(value)
        index = _skip_blanks(text, index)
        if index < len(text) and text[index] == ".":
            index += 1
            continue
        return tuple(parts), index


def _read_key_part(text: str, index: int) -> tuple[str, int] | None:
    if index >= len(text):
        return None
    quote = text[index]
    if quote in "\"'":
        end = index + 1
        while end < len(text) and text[end] != quote:
            end += 2 if quote == '"' and text[end] == "\\" else 1
        if end >= len(text):
            return None
        raw = text[index : end + 1]
        try:
            value = tomllib.loads(f"k = {raw}")["k"]
        except tomllib.TOMLDecodeError:
            return None
        return str(value), end + 1
    match = _BARE_KEY.match(text, index)
    if match is None:
        return None
    return match.group(), match.end()


def _skip_blanks(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t":
        index += 1
    return index


class _ValueState:
    """Tracks open brackets and multi-line strings across lines of a value."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str | None = None

    @property
    def closed(self) -> bool:
        return self.depth == 0 and self.multiline is None

    def feed(self, line: str, index: int) -> None:
        while index < len(line):
            if self.multiline is not None:
                end = line.find(self.multiline, index)
                if end < 0:
                    return
                index = end + 3
                self.multiline = None
                continue
            char = line[index]
            if char == "#":
                return
            if line.startswith(('"""', "'''"), index):
                self.multiline = line[index : index + 3]
                index += 3
            elif char in "\"'":
                index = _end_of_string(line, index) + 1
            else:
                if char in "[{":
                    self.depth += 1
                elif char in "]}":
                    self.depth = max(0, self.depth - 1)
                index += 1


def _end_of_string(line: str, index: int) -> int:
    quote = line[index]
    end = index + 1
    while end < len(line) and line[end] != quote:
        end += 2 if quote == '"' and line[end] == "\\" else 1
    return end
