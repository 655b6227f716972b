"""Mail (hub/mail.py): the outbox without SMTP, delivery over SMTP (a real aiosmtpd on loopback)
by the background job with retries, links from the public URL only, no header injection."""

from __future__ import annotations

import os
import stat

import pytest

from aicommons.config import Settings, SettingsError
from aicommons.errors import BadRequest
from aicommons.hub.hub import Hub
from aicommons.hub.mail import MailError, deliver
from tests.smtp import body_of, links_in, smtp_server


def _hub(tmp_path, monkeypatch, **env) -> Hub:
    for key in list(os.environ):
        if key.startswith("AICOMMONS_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(f"AICOMMONS_{key}", value)
    return Hub(Settings.from_env(data_dir=str(tmp_path / "data")))


def test_without_smtp_mail_lands_in_the_outbox(tmp_path, monkeypatch, caplog):
    hub = _hub(tmp_path, monkeypatch, PUBLIC_URL="https://hub.example.org/")
    try:
        link = hub.mail.link("/verify", token="abc")
        assert link == "https://hub.example.org/verify?token=abc"
        with caplog.at_level("INFO", logger="aicommons.mail"):
            hub.mail.send_mail("ann@example.org", "Verify your address", f"Follow {link} within 24 hours.\n")
        files = sorted((tmp_path / "data" / "outbox").glob("*.eml"))
        assert len(files) == 1
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        text = files[0].read_text()
        assert "To: ann@example.org" in text and "Subject: Verify your address" in text
        assert "From: AI Commons <noreply@localhost>" in text
        assert link in caplog.text  # the operator of a hub without SMTP can follow it
    finally:
        hub.close()


def test_links_come_from_the_configured_address_never_a_request(tmp_path, monkeypatch):
    hub = _hub(tmp_path, monkeypatch, HOST="127.0.0.1", PORT="8123")
    try:
        assert hub.mail.link("/password/reset/x") == "http://127.0.0.1:8123/password/reset/x"
    finally:
        hub.close()


def test_a_header_injection_is_refused(tmp_path, monkeypatch):
    hub = _hub(tmp_path, monkeypatch)
    try:
        for to, subject in (("a@example.org\nBcc: x@evil.example", "s"), ("a@example.org", "s\r\nBcc: x@evil.example")):
            with pytest.raises(BadRequest):
                hub.mail.send_mail(to, subject, "body")
        assert not (tmp_path / "data" / "outbox").exists()
    finally:
        hub.close()


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
def test_the_background_job_delivers_over_smtp_with_credentials(tmp_path, monkeypatch, implicit_tls):
    with smtp_server(user="hub@example.org", password="p@ss:word/1", tls_dir=tmp_path,
                     implicit_tls=implicit_tls) as server:
        assert server.url.startswith("smtps://" if implicit_tls else "smtp+starttls://")
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # the test server's self-signed certificate
        hub = _hub(tmp_path, monkeypatch, SMTP_URL=server.url, EMAIL_FROM="Hub <hub@example.org>",
                   PUBLIC_URL="https://hub.example.org")
        try:
            hub.mail.send_mail("ann@example.org", "Reset your password", f"Go to {hub.mail.link('/r/1')}\n")
            assert not (tmp_path / "data" / "outbox").exists()  # queued, not filed
            assert server.messages == []
            task = hub.jobs.huey.dequeue()
            assert task is not None and task.name == "send_mail"
            hub.jobs.huey.execute(task)
            msg = server.wait_for("ann@example.org", "Reset")
            assert msg["From"] == "Hub <hub@example.org>"
            assert links_in(msg) == ["https://hub.example.org/r/1"]
            assert "Go to" in body_of(msg)
            assert server.messages[0][2]  # signed in (after STARTTLS) with the URL's percent-encoded credentials
        finally:
            hub.close()
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):  # an untrusted server gets nothing
            deliver(server.url, "To: a@example.org\nFrom: b@example.org\nSubject: x\n\nbody\n", timeout=5)


def test_a_failed_delivery_is_retried(tmp_path, monkeypatch):
    with smtp_server() as server:
        url = server.url
    # nothing listens there any more
    hub = _hub(tmp_path, monkeypatch, SMTP_URL=url)
    try:
        hub.mail.send_mail("ann@example.org", "Hello", "text")
        task = hub.jobs.huey.dequeue()
        assert task.retries > 0
        hub.jobs.huey.execute(task)  # fails: huey schedules it again
        assert hub.jobs.huey.scheduled_count() == 1
    finally:
        hub.close()
    with pytest.raises(MailError):
        deliver(url, "To: a@example.org\nFrom: b@example.org\nSubject: x\n\nbody\n", timeout=5)


@pytest.mark.parametrize("url", ["http://mail.example.org", "smtp://", "smtps://host:notaport", "smtp+ssl://h"])
def test_a_bad_smtp_url_names_the_variable(url, monkeypatch, tmp_path):
    monkeypatch.setenv("AICOMMONS_SMTP_URL", url.replace("://", "://user:secret@") if "@" not in url else url)
    with pytest.raises(SettingsError) as exc:
        Settings.from_env(data_dir=str(tmp_path))
    assert "AICOMMONS_SMTP_URL" in str(exc.value)
    assert "secret" not in str(exc.value)


def test_bodies_keep_their_text(tmp_path, monkeypatch):
    from email import message_from_string
    from email.policy import default

    hub = _hub(tmp_path, monkeypatch)
    try:
        long_link = hub.mail.link("/join", invite="x" * 200)
        for body in (f"Open {long_link}\n", "Grüße, 你好 — ünïcode\n"):
            hub.mail.send_mail("a@example.org", "s", body)
            newest = sorted((tmp_path / "data" / "outbox").glob("*.eml"))[-1].read_text()
            assert message_from_string(newest, policy=default).get_body().get_content() == body
        assert long_link in sorted((tmp_path / "data" / "outbox").glob("*.eml"))[0].read_text()  # readable as is
    finally:
        hub.close()
