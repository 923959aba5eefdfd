-- outboxd schema, version 1: the outbox the IAM writes, the event archive, deliveries and attempts.
--
-- Producer contract (the only thing an IAM ever does):
--   INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) VALUES ($1, $2, $3, $4::jsonb)
-- in the same transaction as its own change. id and created_at come from defaults.

-- The hot table: rows live here only until a dispatcher fans them out, so it stays tiny and its
-- index stays in cache however much history the daemon keeps.
CREATE TABLE outboxd.outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm_id    uuid        NOT NULL,
    event       text        NOT NULL,
    resource_id uuid        NOT NULL,
    data        jsonb,                                       -- any JSON value; SQL NULL reads as JSON null
    -- clock_timestamp(), not now(): the moment of the INSERT inside the producer's transaction,
    -- which is as close to its commit as a column default can get.
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Wake the daemon. One notification per producer statement with a constant payload: PostgreSQL
-- folds identical notifications of one transaction into one. The cost at commit is measured in
-- docs/producer-cost.md.
CREATE FUNCTION outboxd.notify_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outboxd', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outboxd.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outboxd.notify_outbox();

-- Fanned-out events: the same rows, moved here by the dispatcher in the transaction that creates
-- their deliveries. Kept for replay and audit until retention removes them.
CREATE TABLE outboxd.events (
    id            bigint      PRIMARY KEY,                   -- the outbox id, unchanged
    realm_id      uuid        NOT NULL,
    event         text        NOT NULL,
    resource_id   uuid        NOT NULL,
    data          jsonb,
    created_at    timestamptz NOT NULL,
    dispatched_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_dispatched_at ON outboxd.events (dispatched_at);

-- One row per (event, webhook): the unique constraint is the exactly-once guarantee of fan-out.
CREATE TABLE outboxd.deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The message id receivers dedupe on: webhook-id and x-ferriskey-delivery-id, the same on
    -- every attempt of one delivery. A UUID rather than the row id, so ids never repeat across
    -- databases. It was first added by 0002, but 0001 and 0002 were only ever released together
    -- (no database stops at version 1), so it lives here: added later, its volatile default would
    -- rewrite a populated table under an exclusive lock.
    message_id      uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_id        bigint      NOT NULL REFERENCES outboxd.events (id) ON DELETE CASCADE,
    webhook_id      uuid        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivering', 'succeeded', 'dead', 'cancelled')),
    attempt_count   integer     NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,                             -- set while a worker holds the delivery
    leased_by       text,                                    -- which daemon instance holds it
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_event_webhook_key UNIQUE (event_id, webhook_id)
);

-- What workers scan: unfinished deliveries by due time. Partial, so finished history costs nothing.
CREATE INDEX deliveries_due ON outboxd.deliveries (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX deliveries_webhook ON outboxd.deliveries (webhook_id, created_at);

-- One row per HTTP attempt; the primary key is the exactly-once guarantee of attempt bookkeeping.
CREATE TABLE outboxd.attempts (
    delivery_id    bigint      NOT NULL REFERENCES outboxd.deliveries (id) ON DELETE CASCADE,
    attempt_number integer     NOT NULL CHECK (attempt_number >= 1),
    started_at     timestamptz NOT NULL,
    duration_ms    integer     NOT NULL CHECK (duration_ms >= 0),
    status_code    integer,                                  -- HTTP status, when a response came
    error_code     text,                                     -- timeout, connect_refused, dns, ...
    response_body  text,                                     -- the response's first bytes, bounded
    succeeded      boolean     NOT NULL,
    PRIMARY KEY (delivery_id, attempt_number)
);
