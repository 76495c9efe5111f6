"""Sending e-mail: a small port with an SMTP implementation, and a recording one for tests.

The worker is the only caller (service/usecases/mailing.py): requests never wait for a mail server.
`mailer_from_settings` gives None when `SMTP_HOST` is empty, which means mail is off.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol


@dataclass(frozen=True)
class Mail:
    """One plain-text e-mail to one address."""

    to: str
    subject: str
    body: str


class MailError(Exception):
    """The mail server did not take a mail; `permanent` when trying again cannot help (a 5xx answer); not `of_mail`
    when it refused this service whatever the mail (its login or sender: a setting to fix), which counts toward no
    mail's MAIL_MAX_ATTEMPTS."""

    def __init__(self, message: str, permanent: bool = False, of_mail: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.of_mail = of_mail


class Mailer(Protocol):
    """Hands mails to a mail server; raises MailError when it does not take one."""

    def send(self, mail: Mail) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str
    starttls: bool
    ssl: bool
    sender: str
    timeout: float


class SmtpMailer:
    """Sends each mail over its own SMTP connection (mails are few: a county office, not a newsletter)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, mail: Mail) -> None:
        try:
            message = self._message(mail)
        except ValueError as exc:  # a header the mail library refuses (a line break in a subject): never sendable
            raise MailError(f"malformed mail: {exc}", permanent=True) from exc
        try:
            with self._connect() as smtp:
                if self.settings.user:
                    smtp.login(self.settings.user, self.settings.password)
                smtp.send_message(message)
        except (smtplib.SMTPHeloError, smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused) as exc:
            # The server refuses this service, whatever the mail (a login or sender a setting must fix): never
            # a reason to give the mail up, nor every other mail of the queue after it.
            raise MailError(f"{exc.smtp_code} {_text(exc.smtp_error)}", of_mail=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise MailError(f"{exc.smtp_code} {_text(exc.smtp_error)}", permanent=500 <= exc.smtp_code < 600) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(f"recipient refused: {codes}", permanent=all(500 <= c < 600 for c in codes)) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.ssl:
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2].strip(">") or None)
        message.set_content(mail.body)  # UTF-8, encoded as the content needs
        return message


@dataclass
class RecordingMailer:
    """Keeps what it was asked to send (for unit tests); `failing` makes it refuse like a server that is down."""

    sent: list[Mail] = field(default_factory=list)
    failing: bool = False

    def send(self, mail: Mail) -> None:
        if self.failing:
            raise MailError("the recording mailer was told to fail")
        self.sent.append(mail)


def mailer_from_settings(settings: Mapping[str, Any]) -> Mailer | None:
    """The SMTP mailer the settings describe, or None when SMTP_HOST is empty (mail is off)."""
    host = str(settings.get("SMTP_HOST") or "")
    if not host:
        return None
    return SmtpMailer(SmtpSettings(
        host=host, port=int(settings.get("SMTP_PORT") or 25), user=str(settings.get("SMTP_USER") or ""),
        password=str(settings.get("SMTP_PASSWORD") or ""), starttls=bool(settings.get("SMTP_STARTTLS")),
        ssl=bool(settings.get("SMTP_SSL")), sender=str(settings.get("MAIL_FROM") or f"cadreflow@{host}"),
        timeout=float(settings.get("SMTP_TIMEOUT") or 10)))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
