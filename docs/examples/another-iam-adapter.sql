-- outboxd's adapter for the application of another-iam-tables.sql:
--   outboxd migrate --adapter-file another-iam-adapter.sql --iam-schema app
--
-- outboxd reads subscriptions only through outboxd.subscriptions(), one row per (webhook, realm,
-- event) with the webhook's URL, extra headers and secret. The rules (docs/integrating.md):
-- a string body ($$ ... $$), LANGUAGE sql STABLE, one SELECT, no SET clause, not STRICT, not
-- SECURITY DEFINER, every table of the application written as @iam_schema@.name (outboxd migrate
-- replaces it with the quoted --iam-schema).
CREATE OR REPLACE FUNCTION outboxd.subscriptions()
RETURNS TABLE (webhook_id uuid, realm_id uuid, event text, url text, headers jsonb, secret text)
LANGUAGE sql STABLE
AS $$
SELECT e.id                                  AS webhook_id,
       e.tenant_id                           AS realm_id,   -- what the outbox row's realm_id holds
       s.event_type                          AS event,
       e.url                                 AS url,
       coalesce(e.extra_headers, '{}'::jsonb) AS headers,
       e.signing_secret                      AS secret
FROM @iam_schema@.webhook_endpoints AS e
JOIN @iam_schema@.webhook_endpoint_events AS s ON s.endpoint_id = e.id
WHERE e.active
$$;

-- No outboxd.report_delivery(): this application does not show delivery results, so
-- `outboxd run --report-to-iam` is not used with it (the daemon would warn once and not report).
