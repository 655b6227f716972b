"""A real SMTP server (aiosmtpd) on loopback for tests that follow mailed links.

``with smtp_server(user="hub", password="pw") as server:`` gives ``server.url`` (an
``AICOMMONS_SMTP_URL``) and ``server.wait_for(to=..., subject_contains=...)``, which returns the
received ``email.message.EmailMessage``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

LINK = re.compile(r"https?://\S+")


class _Collector:
    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.cond:
            self.messages.append((list(envelope.rcpt_tos), msg, getattr(session, "authenticated", False)))
            self.cond.notify_all()
        return "250 OK"


class SmtpServer:
    def __init__(self, controller: Controller, collector: _Collector, url: str):
        self.controller, self.collector, self.url = controller, collector, url

    @property
    def messages(self):
        with self.collector.cond:
            return list(self.collector.messages)

    def wait_for(self, to: str, subject_contains: str = "", timeout: float = 60):
        deadline = time.time() + timeout
        with self.collector.cond:
            while True:
                for rcpts, msg, _auth in self.collector.messages:
                    if to in rcpts and subject_contains in (msg["Subject"] or ""):
                        return msg
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"no mail to {to} ({subject_contains!r}) within {timeout} s; got "
                                         f"{[(r, m['Subject']) for r, m, _ in self.collector.messages]}")
                self.collector.cond.wait(left)


def body_of(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def links_in(msg) -> list[str]:
    return LINK.findall(body_of(msg))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem); clients trust it through
    ``SSL_CERT_FILE=cert.pem``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextlib.contextmanager
def smtp_server(user: str | None = None, password: str | None = None, tls_dir: Path | None = None,
                implicit_tls: bool = False):
    """Plain SMTP without credentials; with ``user`` (and ``tls_dir`` for the certificate), STARTTLS
    and AUTH required: ``server.url`` is ``smtp+starttls://user:password@127.0.0.1:port`` (with
    ``implicit_tls``, TLS from the first byte: ``smtps://...``) and ``server.cert`` the certificate to
    trust."""
    collector = _Collector()
    port = _free_port()
    kwargs, scheme, cert = {}, "smtp", None
    if user is not None:
        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == (password or "").encode()
            return AuthResult(success=ok)

        cert, key = make_cert(tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if implicit_tls:
            # TLS from the first byte, which aiosmtpd's session does not see: AUTH offered without
            # its STARTTLS check (the test asserts the client did sign in)
            kwargs = {"authenticator": authenticator, "auth_require_tls": False, "ssl_context": context}
            scheme = "smtps"
        else:
            kwargs = {"authenticator": authenticator, "auth_required": True, "tls_context": context,
                      "require_starttls": True}
            scheme = "smtp+starttls"
    controller = Controller(collector, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    creds = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user is not None else ""
    server = SmtpServer(controller, collector, f"{scheme}://{creds}127.0.0.1:{port}")
    server.cert = cert
    try:
        yield server
    finally:
        controller.stop()
