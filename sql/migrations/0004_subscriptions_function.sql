-- outboxd schema, version 4: subscriptions become the function outboxd.subscriptions().
--
-- The view this replaces depended on the IAM's columns, so the IAM's own migrations (a column type
-- change, a dropped and re-created table) failed while outboxd was installed. A SQL function with
-- a string body records no dependency on what it reads: the adapter (sql/adapters/) defines it
-- after the migrations, in the same transaction.
DROP VIEW IF EXISTS outboxd.subscriptions;
