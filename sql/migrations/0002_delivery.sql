-- outboxd schema, version 2: what the delivery engine needs.

-- outboxd.deliveries.message_id is created by 0001: the two were only ever released together, and
-- adding the column here (a volatile default) would rewrite the table under an exclusive lock.

-- A human-readable detail beside the machine-readable error_code (never a secret or a header value).
ALTER TABLE outboxd.attempts ADD COLUMN error_detail text;

-- Webhooks whose endpoint answered 410 Gone. FerrisKey's webhooks table has no enabled flag and
-- outboxd never alters the IAM's tables, so the state lives here. No deliveries are created or
-- sent for a webhook listed here; deleting its row re-enables it.
CREATE TABLE outboxd.disabled_webhooks (
    webhook_id  uuid        PRIMARY KEY,
    disabled_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL
);
