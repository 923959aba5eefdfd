#!/usr/bin/env python3
"""A webhook receiver for outboxd, in Python with the `standardwebhooks` package (PyPI).

It verifies both signatures outboxd puts on every request (a real receiver needs only one of
them), answers 2xx once a message is verified, 401 when it is not, and processes each message
once, keyed by its webhook-id. docs/receiving.md explains every step; tests/receiver_examples_pgtest.cpp
runs this file against the real daemon.

    WEBHOOK_SECRET=<the webhook's secret> PORT=8080 python3 receiver.py

Prints "listening on 127.0.0.1:PORT", then one line per request: "accepted ID EVENT",
"duplicate ID" or "rejected REASON".
"""

import hashlib
import hmac
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
TOLERANCE_SECONDS = 5 * 60

# The Standard Webhooks key: a "whsec_" secret is base64 after its prefix (pass the string); any
# other secret, such as FerrisKey's 64 hex characters, is used as its own bytes (pass bytes: the
# library would base64-decode a string).
standard_webhook = Webhook(SECRET if SECRET.startswith("whsec_") else SECRET.encode())


def ferriskey_verified(headers, body):
    """FerrisKey's scheme: lowercase hex HMAC-SHA256 of "{timestamp}.{body}", keyed with the
    secret's text as it is stored (a "whsec_" prefix included)."""
    timestamp = headers.get("x-ferriskey-timestamp", "")
    signature = headers.get("x-ferriskey-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), signature)


# webhook-ids already processed. outboxd delivers at least once: a retry, or a request whose
# answer was lost, comes again with the same webhook-id and the same body. A real receiver keeps
# these in its own database, in the transaction that applies the event.
processed = set()
processed_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: outboxd reuses connections

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            # Checks webhook-timestamp (within 5 minutes) and every "v1,..." entry of
            # webhook-signature (two while a secret is being rotated); returns the parsed body.
            event = standard_webhook.verify(body, headers)
        except WebhookVerificationError as error:
            return self.answer(401, f"rejected standard-webhooks: {error}")
        if not ferriskey_verified(headers, body):
            return self.answer(401, "rejected x-ferriskey-signature")

        message_id = headers["webhook-id"]
        with processed_lock:
            duplicate = message_id in processed
            processed.add(message_id)
        if duplicate:
            # Already done: say so with a 2xx, or outboxd retries it.
            return self.answer(200, f"duplicate {message_id}")
        # Apply the event here: event["event"], event["resource_id"], event["data"].
        self.answer(200, f"accepted {message_id} {event['event']}")

    def answer(self, status, line):
        print(line, flush=True)
        payload = (line + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # one line per request is printed by answer()
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
