-- outboxd schema, version 3: a claim fence that never goes back, and crash accounting.
--
-- The lease protocol (claim, fenced writes, release, expiry) is in daemon/delivery_store.cpp.
-- Both columns have constant defaults, so adding them rewrites and scans nothing.

-- Incremented by every claim and by nothing else: it never repeats and never decreases. Every
-- write of a claim's holder (outcome, release) carries the token it claimed with and changes the
-- delivery only while the token is still the delivery's, so a stale or replayed write is inert.
ALTER TABLE outboxd.deliveries ADD COLUMN claim_token bigint NOT NULL DEFAULT 0;

-- How many of the delivery's attempts ended with an expired lease (the holder stopped before
-- recording an outcome). They are recorded as attempts ('lease_expired') but do not move the
-- delivery along its retry schedule: the schedule counts attempt_count - expired_attempts.
-- Past a bound they end the delivery ('crash_loop'), so a message that kills its daemon cannot
-- loop forever.
-- (No CHECK constraint: validating one would scan the table under an exclusive lock.)
ALTER TABLE outboxd.deliveries ADD COLUMN expired_attempts integer NOT NULL DEFAULT 0;

-- Version 2 counted an attempt when it was claimed; version 3 counts it when its outcome (or its
-- expiry) is recorded. Deliveries held under lease right now belong to a version-2 daemon: count
-- them the new way, so the next claim records the held attempt as expired under its own number.
UPDATE outboxd.deliveries SET attempt_count = attempt_count - 1
WHERE status = 'delivering' AND attempt_count > 0;
