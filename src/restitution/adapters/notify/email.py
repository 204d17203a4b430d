"""E-mail: plain-text Jinja2 templates in the recipient's locale, sent over SMTP or logged.

Templates live in `templates/email/<name>.txt`; the first line is the subject, then a blank
line, then the body. Strings are marked for translation (`{% trans %}`, `_()`), so
`pybabel extract -F babel.cfg` collects them; a compiled catalog in
`locales/<locale>/LC_MESSAGES/messages.mo` translates them, and English is the fallback.
Dates and money are formatted with Babel for the locale and the party's time zone.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, get_timezone
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader

from restitution.services.ports import OutgoingEmail

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates" / "email"
LOCALES = HERE / "locales"
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str


def normalise_locale(value: str | None) -> str:
    """A locale Babel knows (`de_DE`, `pt-BR` → `pt_BR`), else English."""
    if not value:
        return DEFAULT_LOCALE
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return DEFAULT_LOCALE


@lru_cache(maxsize=64)
def _environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        extensions=["jinja2.ext.i18n"],
        autoescape=False,  # plain text
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Text from outside on the subject line (the first): its line breaks would end it there.
    env.filters["one_line"] = lambda value: " ".join(str(value).split())
    translations = Translations.load(str(LOCALES), [locale, DEFAULT_LOCALE])
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def render(template: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
    locale = normalise_locale(locale)
    zone = context.get("time_zone") or "UTC"

    def moment(value: str | None) -> str:
        if not value:
            return ""
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        try:
            tz = get_timezone(zone)
        except (LookupError, ValueError):  # unknown, or no zone's name at all ("America/")
            tz = get_timezone("UTC")
        return format_datetime(when, "medium", tzinfo=tz, locale=locale) + f" ({tz})"

    env = _environment(locale)
    text = env.get_template(f"{template}.txt").render(**context, moment=moment)
    subject, _, body = text.partition("\n")
    return RenderedEmail(subject.strip(), body.lstrip("\n"))


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("RESTITUTION_SMTP_URL must look like smtp://[user:pass@]host[:port]")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[-1].lower() in ("1", "true", "yes")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=starttls,
            implicit_tls=implicit,
        )


class SmtpMailer:
    def __init__(self, url: str, sender: str, timeout: float = 30.0) -> None:
        self.settings = SmtpSettings.from_url(url)
        self.sender = sender
        self.timeout = timeout

    def send(self, email: OutgoingEmail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = make_msgid(domain="restitution")
        for name, value in email.headers.items():
            message[name] = value
        message.set_content(email.body)
        s = self.settings
        smtp: smtplib.SMTP
        if s.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                s.host, s.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        with smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
            smtp.send_message(message)
