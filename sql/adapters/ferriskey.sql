-- Subscriber resolution for FerrisKey (see docs/architecture.md, "Adapters").
--
-- outboxd reads subscriptions only through the function outboxd.subscriptions(). This file
-- defines it over FerrisKey's own tables, which outboxd never alters. `outboxd migrate` replaces
-- @iam_schema@ with the quoted name of the IAM's schema (--iam-schema, default public) and runs
-- the file in the transaction that applies the migrations.
--
-- Rules for an adapter, so the IAM's own migrations are never blocked and the planner still
-- optimises through it:
-- - a string body ($$ ... $$), not BEGIN ATOMIC: a string body records no dependency on the
--   IAM's tables or columns, so the IAM can alter, drop and re-create them; while they are gone,
--   dispatch pauses and resumes by itself;
-- - inlinable: LANGUAGE sql, STABLE, one SELECT, no SET clause, not STRICT, not SECURITY DEFINER;
-- - every IAM table qualified with @iam_schema@ (an inlined body runs under the caller's
--   search_path).
-- `outboxd migrate` creates it with check_function_bodies on, so a missing table fails the whole
-- migration and leaves the database as it was.
--
-- Another IAM needs only another file that defines the same function with the same columns.

CREATE OR REPLACE FUNCTION outboxd.subscriptions()
RETURNS TABLE (webhook_id uuid, realm_id uuid, event text, url text, headers jsonb, secret text)
LANGUAGE sql STABLE
AS $$
SELECT w.id                AS webhook_id,
       w.realm_id          AS realm_id,
       s.event             AS event,
       w.endpoint::text    AS url,
       w.headers           AS headers,
       w.secret            AS secret
FROM @iam_schema@.webhooks AS w
-- FerrisKey does not make (webhook_id, name) unique: a webhook subscribed twice to one event
-- must still get one delivery.
JOIN (SELECT DISTINCT webhook_id, name::text AS event FROM @iam_schema@.webhook_subscribers) AS s
  ON s.webhook_id = w.id
$$;

-- Optional: where `outboxd run --report-to-iam` writes each webhook's last finished delivery, in
-- the columns FerrisKey's console shows. Not inlined (it writes), but the same rules otherwise:
-- a string body, every IAM table qualified with @iam_schema@. outboxd passes status 'succeeded'
-- or 'failed' (the delivery is dead: attempts exhausted, or a response or error that is not
-- retried), error NULL on success, else e.g. 'HTTP 503: ...' or 'timeout: ...'; values are cut to
-- the columns' widths, and triggered_at (a timestamp without time zone) holds UTC. A report older
-- than the row's never replaces it: several daemons may report one webhook, in any order.
-- updated_at is left alone: it tells when the webhook itself was last changed.
-- An adapter without this function still works: the daemon warns once and stops reporting.
CREATE OR REPLACE FUNCTION outboxd.report_delivery(webhook_id uuid, status text, error text,
                                                   finished_at timestamptz)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
UPDATE @iam_schema@.webhooks AS w
SET last_delivery_status = left(report_delivery.status, 16),
    last_delivery_error = left(report_delivery.error, 255),
    triggered_at = report_delivery.finished_at AT TIME ZONE 'UTC'
WHERE w.id = report_delivery.webhook_id
  AND (w.triggered_at IS NULL
       OR w.triggered_at <= report_delivery.finished_at AT TIME ZONE 'UTC')
$$;
