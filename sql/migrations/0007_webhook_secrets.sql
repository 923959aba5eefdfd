-- outboxd schema, version 7: the secret a webhook had before its last change.
--
-- The IAM keeps one secret per webhook. When it changes, receivers that still verify with the old
-- one would reject everything until they are updated, so outboxd keeps the old one for a grace
-- period (--secret-grace) and signs with both: webhook-signature: v1,<new> v1,<old>.
-- The claim statement (daemon/delivery_store.cpp) notices a change by comparing the secret it
-- reads through outboxd.subscriptions() with `secret` here, and records it with an upsert, so
-- several daemons noticing one change at once record it once. Retention clears previous_secret
-- once its grace is over and deletes the rows of webhooks the IAM no longer has.
--
-- These are copies of webhook secrets: grant access to this table as to the IAM's webhooks.
-- A new, empty table: creating it locks nothing the IAM uses.
CREATE TABLE outboxd.webhook_secrets (
    webhook_id      uuid        PRIMARY KEY,
    secret          text        NOT NULL,                    -- the secret last seen in the IAM
    previous_secret text,                                    -- the one before it, during grace
    previous_until  timestamptz,                             -- when previous_secret stops signing
    changed_at      timestamptz                              -- when the change was first seen
);
