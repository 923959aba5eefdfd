-- Subscriber resolution for FerrisKey (see docs/architecture.md, "Adapters").
--
-- outboxd reads subscriptions only through outboxd.subscriptions. This file defines that view over
-- FerrisKey's own tables, which outboxd never alters. `outboxd migrate` runs it with search_path
-- set to the IAM's schema (--iam-schema, default public), so the table names below are left
-- unqualified on purpose: PostgreSQL binds them to that schema when the view is created.
--
-- Another IAM needs only another file that defines the same columns.

CREATE OR REPLACE VIEW outboxd.subscriptions AS
SELECT w.id                AS webhook_id,
       w.realm_id          AS realm_id,
       s.event             AS event,
       w.endpoint::text    AS url,
       w.headers           AS headers,
       w.secret            AS secret
FROM webhooks AS w
-- FerrisKey does not make (webhook_id, name) unique: a webhook subscribed twice to one event
-- must still get one delivery.
JOIN (SELECT DISTINCT webhook_id, name::text AS event FROM webhook_subscribers) AS s
  ON s.webhook_id = w.id;
