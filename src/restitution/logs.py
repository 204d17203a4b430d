"""Log lines as the operator wants them: JSON (one object per line, for a log collector) or
a coloured console, at a level; on stderr, so a command's own output on stdout stays clean."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

LogFormat = Literal["auto", "json", "console"]


def configure(
    log_format: LogFormat = "auto", level: str = "info", *, to: TextIO | None = None
) -> None:
    """`auto`: the console's format on a terminal, JSON otherwise (a service, a container)."""
    out = to or sys.stderr
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "console" or (log_format == "auto" and out.isatty()):
        processors.append(structlog.dev.ConsoleRenderer())  # formats exceptions itself
    else:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # The stream as it is when a line is written (tests and tools swap sys.stderr).
        logger_factory=lambda *_: structlog.PrintLogger(to or sys.stderr),
        cache_logger_on_first_use=False,
    )
