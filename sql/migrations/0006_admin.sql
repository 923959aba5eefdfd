-- outboxd schema, version 6: what the admin commands need: replay, open circuits and
-- per-webhook policies.
--
-- Nothing here rewrites or scans a populated table: the new column has a constant default, and
-- the two new tables start empty.

-- `outboxd replay` puts a finished delivery back to pending under the same message id; its new
-- attempts continue the numbering (attempt_count goes on). The retry schedule and the attempt
-- limit count only the tries after the last replay: attempt_count - expired_attempts -
-- replayed_attempts. A replay sets this to attempt_count and expired_attempts back to 0, so
-- expired_attempts counts the expired leases since the last replay.
ALTER TABLE outboxd.deliveries ADD COLUMN replayed_attempts integer NOT NULL DEFAULT 0;

-- Circuits the daemons' breakers hold open, so that `outboxd webhooks` can show them. An endpoint
-- is scheme://host:port, the breaker's key. A daemon inserts (or refreshes) its row when the
-- circuit opens and deletes it when a trial request closes it; a row whose open_until has
-- passed is a circuit waiting for its trial (half-open) or one its daemon forgot.
CREATE TABLE outboxd.open_circuits (
    endpoint   text        PRIMARY KEY,
    opened_at  timestamptz NOT NULL DEFAULT now(),
    open_until timestamptz NOT NULL,
    opened_by  text        NOT NULL                    -- the daemon's instance id
);

-- Per-webhook overrides of the daemon's settings (`outboxd policy`); NULL: the daemon's own.
CREATE TABLE outboxd.webhook_policies (
    webhook_id        uuid        PRIMARY KEY,
    retry_schedule_ms bigint[]    CHECK (cardinality(retry_schedule_ms) >= 1),  -- delays after try 1, 2, ...
    max_attempts      integer     CHECK (max_attempts BETWEEN 1 AND 100),
    max_in_flight     integer     CHECK (max_in_flight BETWEEN 1 AND 10000),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
