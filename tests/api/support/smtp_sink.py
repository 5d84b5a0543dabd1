"""A real SMTP server for Tessera's tests (aiosmtpd): stores every message it accepts.

    smtp_sink.py --port PORT --dir DIR [--reply "451 4.3.0 Try again later"]

Each accepted message's bytes (as received after DATA) are written atomically to DIR/<n>.eml,
n = 1, 2, ... With --reply, every message is answered with that reply after DATA instead of
250 and nothing is stored. Prints "ready" once listening; exits when stdin closes or on SIGTERM.
Started and stopped by tests/api/support/smtp.rs.
"""

import argparse
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, reply):
        self.directory = directory
        self.reply = reply
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        with self.lock:
            self.count += 1
            n = self.count
        temporary = os.path.join(self.directory, f".{n}.eml.tmp")
        with open(temporary, "wb") as out:
            out.write(envelope.content)
            out.flush()
            os.fsync(out.fileno())
        # The reader lists *.eml: it never sees a half-written message.
        os.rename(temporary, os.path.join(self.directory, f"{n}.eml"))
        return "250 2.0.0 Message accepted"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reply", default=None)
    args = parser.parse_args()

    controller = Controller(
        Sink(args.dir, args.reply),
        hostname="127.0.0.1",
        port=args.port,
        # A fixed name: the default asks DNS for this machine's FQDN, which can be slow.
        server_hostname="tessera-test-sink",
    )
    controller.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        # The harness holds our stdin open; when it goes away (even by crashing), so do we.
        sys.stdin.buffer.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
