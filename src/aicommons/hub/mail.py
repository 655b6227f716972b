"""Mail: verification, password-reset and invite links, notices to account owners.

``Mailer.send_mail(to, subject, body)`` builds the message at once and then

- with ``AICOMMONS_SMTP_URL`` set, queues the background job ``send_mail`` (``hub/jobs.py``), which
  delivers it over SMTP with retries (``smtp://``, ``smtps://`` = TLS from the start,
  ``smtp+starttls://``; the server's certificate is verified against the system's CAs, or
  ``SSL_CERT_FILE``; user and password from the URL, percent-encoded);
- without SMTP, writes it to ``<DATA_DIR>/outbox/<time>-<id>.eml`` (0600, written whole then renamed)
  and logs its links, so that a one-machine hub's sign-up and reset still complete.

Every link the hub mails is built by ``Mailer.link`` from ``AICOMMONS_PUBLIC_URL`` (else the
configured host and port), never from a request's ``Host`` header: a forged Host cannot make the
hub mail a reset link pointing at an attacker's site.
"""

from __future__ import annotations

import logging
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import Parser
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

from aicommons.config import Settings
from aicommons.errors import BadRequest
from aicommons.hub.private_files import write_private_file
from aicommons.times import utcnow

log = logging.getLogger("aicommons.mail")
SMTP_TIMEOUT_SECONDS = 30
DEFAULT_PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}
_LINK = re.compile(r"https?://\S+")


class MailError(Exception):
    """Delivery failed (the job retries)."""


def public_base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


class Mailer:
    def __init__(self, settings: Settings, queue: Callable[[str], None]):
        self.settings = settings
        self._queue = queue  # hands the message's text to the background job
        self.outbox = settings.data_dir / "outbox"

    def link(self, path: str, **params: str) -> str:
        """An absolute link to ``path`` on this hub, from the configured public URL."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{public_base_url(self.settings)}{path}{query}"

    def compose(self, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        try:
            msg["From"] = self.settings.email_from
            msg["To"] = to
            msg["Subject"] = subject
        except (ValueError, TypeError) as exc:  # a line break in a header: never a header injection
            raise BadRequest(f"Invalid mail header: {exc}") from None
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="aicommons.local")
        msg["Auto-Submitted"] = "auto-generated"
        # Plain 7-bit text when it can be (an .eml in the outbox then shows its links as they are).
        msg.set_content(body, cte="7bit" if body.isascii() and max(map(len, body.splitlines() or [""])) <= 990
                        else "quoted-printable")
        return msg

    def send_mail(self, to: str, subject: str, body: str) -> None:
        """Send (or, without SMTP, file) one plain-text mail. Returns once it is queued or written."""
        msg = self.compose(to, subject, body)
        text = msg.as_string(policy=SMTP_POLICY)
        if self.settings.smtp_url:
            self._queue(text)
            return
        path = write_outbox(self.outbox, text)
        log.info("mail to %s (%r) written to %s; its links: %s", to, subject, path,
                 " ".join(_LINK.findall(body)) or "none")


def write_outbox(outbox: Path, text: str) -> Path:
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = outbox / f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(4)}.eml"
    write_private_file(path, text)
    return path


def deliver(smtp_url: str, text: str, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
    """Send one message (as queued by ``send_mail``) over SMTP; MailError on any failure."""
    parts = urlsplit(smtp_url)
    msg = Parser(policy=SMTP_POLICY).parsestr(text)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    context = ssl.create_default_context()
    if parts.hostname is None:
        raise MailError("the mail server URL names no host")
    client: smtplib.SMTP
    try:
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(parts.hostname, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=timeout)
        with client:
            if parts.scheme == "smtp+starttls":
                client.starttls(context=context)
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP delivery to {parts.hostname}:{port} failed: {exc}") from exc
