#!/usr/bin/python3
"""A real SMTP server for the notification tests (aiosmtpd).

Listens on 127.0.0.1 on a free port and prints "READY <port>" once it accepts connections.
Every accepted message is written to --dir as one JSON file: envelope sender and recipients,
the raw message, the authenticated login (or null) and whether the session was encrypted.

Modes: plain (no TLS), starttls (STARTTLS offered and required before AUTH and MAIL),
tls (implicit TLS from the first byte). With --user/--password, AUTH PLAIN and LOGIN are
offered and required, and only that pair is accepted.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import uuid
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "login": session.auth_data if session.authenticated else None,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
        }
        name = os.path.join(self.out_dir, uuid.uuid4().hex)
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password:
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)
    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    # aiosmtpd warns about AUTH without STARTTLS even under implicit TLS.
    warnings.filterwarnings("ignore")

    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    kwargs = {"hostname": "sink.test", "tls_context": ctx if a.mode == "starttls" else None,
              "require_starttls": a.mode == "starttls"}
    if a.user:
        kwargs["authenticator"] = authenticator(a.user, a.password)
        kwargs["auth_required"] = True
        # Implicit TLS is TLS too; aiosmtpd only knows about STARTTLS when deciding this.
        kwargs["auth_require_tls"] = a.mode == "starttls"
    handler = Sink(a.dir)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, **kwargs), "127.0.0.1", 0,
                                          ssl=ctx if a.mode == "tls" else None)
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        # Exits when the test closes our stdin (or dies).
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
