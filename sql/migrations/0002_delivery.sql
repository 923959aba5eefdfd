-- outboxd schema, version 2: what the delivery engine needs.

-- The message id receivers dedupe on: webhook-id and x-ferriskey-delivery-id, the same on every
-- attempt of one delivery. A UUID rather than the row id, so ids never repeat across databases.
ALTER TABLE outboxd.deliveries ADD COLUMN message_id uuid NOT NULL DEFAULT gen_random_uuid();

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
