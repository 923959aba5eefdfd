-- outboxd schema, version 5: outbox rows the dispatcher cannot fan out.
--
-- A row whose fan-out fails on its own (bad data, a key that already exists: SQLSTATE classes 22,
-- 23 and 54) is moved here in one statement, so it no longer stops the rows behind it. Same
-- columns as outboxd.outbox, plus when and why it failed (the server's primary message only).
CREATE TABLE outboxd.poison_events (
    id            bigint      PRIMARY KEY,                   -- the outbox id it had
    realm_id      uuid        NOT NULL,
    event         text        NOT NULL,
    resource_id   uuid        NOT NULL,
    data          jsonb,
    created_at    timestamptz NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT now(),
    sqlstate      text        NOT NULL,
    error_message text        NOT NULL
);

-- Once the cause is fixed: SELECT outboxd.replay_poison_event(id). Moves the row back into the
-- outbox with a new id (the old one may be the very conflict that set it aside) and its original
-- created_at, and returns the new id; the dispatcher picks it up like any other event.
CREATE FUNCTION outboxd.replay_poison_event(poison_id bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
BEGIN
    WITH moved AS (
        DELETE FROM outboxd.poison_events WHERE id = poison_id
        RETURNING realm_id, event, resource_id, data, created_at
    )
    INSERT INTO outboxd.outbox (realm_id, event, resource_id, data, created_at)
    SELECT realm_id, event, resource_id, data, created_at FROM moved
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'no event % in outboxd.poison_events', poison_id
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN new_id;
END
$$;
