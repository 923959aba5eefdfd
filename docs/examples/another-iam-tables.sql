-- The tables of an application that is not FerrisKey, as docs/integrating.md uses them: tenants
-- own webhook endpoints, each subscribed to some event types. outboxd only reads them, through
-- the adapter in another-iam-adapter.sql. (tests/integrating_pgtest.cpp creates these in
-- schema "app" and migrates with that adapter.)
CREATE TABLE app.webhook_endpoints (
    id             uuid    PRIMARY KEY,
    tenant_id      uuid    NOT NULL,
    url            text    NOT NULL,
    signing_secret text    NOT NULL,        -- e.g. whsec_<base64>
    extra_headers  jsonb,                   -- {"Header-Name": "value"} or NULL
    active         boolean NOT NULL DEFAULT true
);

CREATE TABLE app.webhook_endpoint_events (
    endpoint_id uuid NOT NULL REFERENCES app.webhook_endpoints (id) ON DELETE CASCADE,
    event_type  text NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);
