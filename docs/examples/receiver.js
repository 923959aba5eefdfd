#!/usr/bin/env node
// A webhook receiver for outboxd, in Node.js with the `standardwebhooks` package (npm).
//
// It verifies both signatures outboxd puts on every request (a real receiver needs only one of
// them), answers 2xx once a message is verified, 401 when it is not, and processes each message
// once, keyed by its webhook-id. docs/receiving.md explains every step;
// tests/receiver_examples_pgtest.cpp runs this file against the real daemon.
//
//     WEBHOOK_SECRET=<the webhook's secret> PORT=8080 node receiver.js
//
// Prints "listening on 127.0.0.1:PORT", then one line per request: "accepted ID EVENT",
// "duplicate ID" or "rejected REASON".
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secret = process.env.WEBHOOK_SECRET;
const toleranceSeconds = 5 * 60;

// The Standard Webhooks key: a "whsec_" secret is base64 after its prefix; any other secret, such
// as FerrisKey's 64 hex characters, is used as its own bytes ({ format: "raw" }).
const standardWebhook = secret.startsWith("whsec_")
  ? new Webhook(secret)
  : new Webhook(secret, { format: "raw" });

// FerrisKey's scheme: lowercase hex HMAC-SHA256 of "{timestamp}.{body}", keyed with the secret's
// text as it is stored (a "whsec_" prefix included).
function ferriskeyVerified(headers, body) {
  const timestamp = headers["x-ferriskey-timestamp"] || "";
  const signature = Buffer.from(headers["x-ferriskey-signature"] || "");
  if (!/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(
    crypto.createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex"),
  );
  return expected.length === signature.length && crypto.timingSafeEqual(expected, signature);
}

// webhook-ids already processed. outboxd delivers at least once: a retry, or a request whose
// answer was lost, comes again with the same webhook-id and the same body. A real receiver keeps
// these in its own database, in the transaction that applies the event.
const processed = new Set();

function answer(response, status, line) {
  console.log(line);
  response.writeHead(status, { "Content-Type": "text/plain" });
  response.end(`${line}\n`);
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    // The raw bytes: re-serialising parsed JSON would change what was signed.
    const body = Buffer.concat(chunks);
    let event;
    try {
      // Checks webhook-timestamp (within 5 minutes) and every "v1,..." entry of
      // webhook-signature (two while a secret is being rotated); returns the parsed body.
      event = standardWebhook.verify(body, request.headers);
    } catch (error) {
      answer(response, 401, `rejected standard-webhooks: ${error.message}`);
      return;
    }
    if (!ferriskeyVerified(request.headers, body)) {
      answer(response, 401, "rejected x-ferriskey-signature");
      return;
    }
    const messageId = request.headers["webhook-id"];
    if (processed.has(messageId)) {
      // Already done: say so with a 2xx, or outboxd retries it.
      answer(response, 200, `duplicate ${messageId}`);
      return;
    }
    processed.add(messageId);
    // Apply the event here: event.event, event.resource_id, event.data.
    answer(response, 200, `accepted ${messageId} ${event.event}`);
  });
});

server.listen(Number(process.env.PORT || 8080), "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
