#!/usr/bin/env python3
"""Delivers a digest to an independent SMTP server (aiosmtpd) with STARTTLS and AUTH,
and checks what arrives with Python's own email parser.

Usage: smtp_check.py TWINFEED_BINARY SITE_FOLDER
SITE_FOLDER must hold an inbox/ of articles with both languages (the seeds).
"""

import email
import email.policy
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import tempfile

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "twinfeed"
PASSWORD = "pa55 word ☃"


class Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content, session.authenticated))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(message):
    print(f"smtp_check: {message}")
    sys.exit(1)


def main():
    binary, site = sys.argv[1], pathlib.Path(sys.argv[2])
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = site / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    sink = Sink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="localhost",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    try:
        config = site / "twinfeed.toml"
        config.write_text(
            f"""[digest]
enabled = true
from = "双语新闻 <digest@example.org>"
[[digest.recipients]]
email = "zh@example.org"
lang = "zh"
[[digest.recipients]]
email = "en@example.org"
lang = "en"
[[digest.recipients]]
email = "both@example.org"
lang = "both"
[digest.smtp]
host = "localhost"
port = {port}
security = "starttls"
username = "{USER}"
password_env = "CI_SMTP_PASSWORD"
ca_file = "{ca_file}"
""",
            encoding="utf-8",
        )
        run = lambda *args: subprocess.run(
            [binary, *args, "--config", str(config)],
            env={**os.environ, "CI_SMTP_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
        )
        built = run("build")
        if built.returncode != 0:
            fail(f"build failed: {built.stderr}")
        sent = run("digest", "send")
        if sent.returncode != 0:
            fail(f"digest send failed: {sent.stdout} {sent.stderr}")
        if PASSWORD in sent.stderr or PASSWORD in sent.stdout:
            fail("the password was printed")
    finally:
        controller.stop()

    if len(sink.messages) != 3:
        fail(f"{len(sink.messages)} messages arrived, not 3")
    for rcpts, content, authenticated in sink.messages:
        if not authenticated:
            fail(f"{rcpts}: delivered without AUTH")
        message = email.message_from_bytes(content, policy=email.policy.default)
        to = rcpts[0]
        subject = str(message["Subject"])
        wants_zh = to.startswith(("zh", "both"))
        wants_en = to.startswith(("en", "both"))
        if wants_zh and "篇新文章" not in subject:
            fail(f"{to}: subject {subject!r}")
        if wants_en and "new article" not in subject:
            fail(f"{to}: subject {subject!r}")
        if message["From"].addresses[0].display_name != "双语新闻":
            fail(f"{to}: From {message['From']!r}")
        for header in ("Message-ID", "Date", "List-Id", "List-Unsubscribe"):
            if not message[header]:
                fail(f"{to}: no {header}")
        if str(message["List-Unsubscribe-Post"]) != "List-Unsubscribe=One-Click":
            fail(f"{to}: List-Unsubscribe-Post {message['List-Unsubscribe-Post']!r}")
        if message.get_content_type() != "multipart/alternative":
            fail(f"{to}: {message.get_content_type()}")
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for lang, wanted in (("zh", wants_zh), ("en", wants_en)):
            link = f"http://127.0.0.1:8080/{lang}/"
            if (link in html) != wanted or (link in text) != wanted:
                fail(f"{to}: links to /{lang}/ pages wrong")
        print(f"smtp_check: {to}: {subject}")
    print("smtp_check: 3 digests delivered over STARTTLS with AUTH and parsed")


if __name__ == "__main__":
    main()
