#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# A real SMTP server (aiosmtpd) for the mail tests: spools what it receives, fails on request.
"""Run with Debian's /usr/bin/python3 (package python3-aiosmtpd).

Listens on 127.0.0.1 at --port (0 picks a free port) and prints "PORT <n>" on stdout once it accepts
connections. Each accepted message is written to --spool as NNNN.eml (the raw DATA bytes, CRLF line
ends, dot-stuffing already undone) and then NNNN.envelope (key/value lines: from, rcpt (one line per
recipient), tls, auth). The .envelope file is renamed into place last, so a reader that lists
*.envelope never sees half a message.

--mode chooses how the server behaves:
  ok                     accept everything
  421-connect            greet every connection with 421 and close it
  554-greeting           greet every connection with 554 (no service) and close it
  535-auth               refuse every AUTH with 535 (needs --auth)
  530-mail               answer every MAIL FROM with 530 (authentication required)
  451-rcpt               answer every RCPT TO with 451 (temporary)
  550-rcpt               answer every RCPT TO with 550 (permanent)
  550-data               read the whole DATA, record nothing, answer the final dot with 550
  disconnect-after-data  read the whole DATA (and record it), then drop the connection unanswered
  slow-data              record the whole DATA, then wait --delay seconds before answering 250
"Connection refused" needs no mode: do not start a server on the port.

With --mode-file, the mode is read from that file (one word) whenever a connection or a command
arrives, so a test can change it while the server runs; --mode applies while the file is missing.
"""

import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

MODES = ("ok", "421-connect", "554-greeting", "535-auth", "530-mail", "451-rcpt", "550-rcpt",
         "550-data", "disconnect-after-data", "slow-data")


class Recorder:
    """The aiosmtpd handler: applies the failure mode and spools what it accepts."""

    def __init__(self, mode, spool, mode_file=None, delay=5.0):
        self.default_mode = mode
        self.mode_file = mode_file
        self.delay = delay
        self.spool = spool
        self.count = 0

    @property
    def mode(self):
        if self.mode_file:
            try:
                with open(self.mode_file, encoding="utf-8") as f:
                    mode = f.read().strip()
                if mode in MODES:
                    return mode
            except FileNotFoundError:
                pass
        return self.default_mode

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mode == "530-mail":
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mode = self.mode
        if mode == "451-rcpt":
            return "451 4.3.0 Mailbox temporarily unavailable"
        if mode == "550-rcpt":
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = self.mode
        if mode == "550-data":
            return "550 5.7.1 Message refused"
        self.record(server, session, envelope)
        if mode == "disconnect-after-data":
            # The whole message and its final dot were read; the reply never comes. Dropping the
            # connection cancels this coroutine, so it waits here instead of answering.
            server.transport.abort()
            await asyncio.Event().wait()
        if mode == "slow-data":
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Queued"

    def record(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.spool, "%04d" % self.count)
        with open(stem + ".eml", "wb") as out:
            out.write(envelope.original_content or envelope.content or b"")
        lines = ["from " + (envelope.mail_from or "")]
        lines += ["rcpt " + rcpt for rcpt in envelope.rcpt_tos]
        # After STARTTLS, and from the start with implicit TLS, the transport is a TLS one.
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        lines.append("tls " + ("yes" if encrypted else "no"))
        login = session.auth_data.login.decode() if session.authenticated else ""
        lines.append("auth " + login)
        with open(stem + ".envelope.tmp", "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.rename(stem + ".envelope.tmp", stem + ".envelope")


class Refuser(asyncio.Protocol):
    """421 (or 554) at connect: the server is up but will not talk."""

    def __init__(self, greeting=b"421 4.3.2 Service not available, closing channel\r\n"):
        self.greeting = greeting

    def connection_made(self, transport):
        transport.write(self.greeting)
        transport.close()


def make_authenticator(user, password, recorder):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode() and recorder.mode != "535-auth")
        # handled=False: aiosmtpd itself answers a failure with 535.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--spool", required=True, help="directory for received messages")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--mode-file", help="read the mode from this file when it exists")
    parser.add_argument("--delay", type=float, default=5.0, help="seconds slow-data waits")
    parser.add_argument("--starttls-cert", help="offer STARTTLS with this certificate (PEM)")
    parser.add_argument("--implicit-tls-cert", help="speak TLS from the first byte (smtps)")
    parser.add_argument("--key", help="private key (PEM) for the certificate")
    parser.add_argument("--auth", help="require AUTH with USER:PASSWORD (allowed without TLS)")
    args = parser.parse_args()

    recorder = Recorder(args.mode, args.spool, args.mode_file, args.delay)
    starttls = tls_context(args.starttls_cert, args.key) if args.starttls_cert else None
    implicit = tls_context(args.implicit_tls_cert, args.key) if args.implicit_tls_cert else None
    options = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        options = {"auth_required": True, "auth_require_tls": False,
                   "authenticator": make_authenticator(user, password, recorder)}

    def factory():
        if recorder.mode == "421-connect":
            return Refuser()
        if recorder.mode == "554-greeting":
            return Refuser(b"554 5.3.2 No SMTP service here\r\n")
        return SMTP(recorder, hostname="smtp.test", tls_context=starttls, timeout=30, **options)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    server = loop.run_until_complete(loop.create_server(factory, sock=listener, ssl=implicit))
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    print("PORT %d" % listener.getsockname()[1], flush=True)
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
