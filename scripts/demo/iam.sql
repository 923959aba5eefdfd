-- The demo's IAM: one FerrisKey realm and three webhooks (the receiver's port is :'port').
--   crm    : user events, with a custom header
--   audit  : every event, at an endpoint that fails at first (503 + Retry-After)
--   search : realm and role events
INSERT INTO realms (id, name) VALUES ('0198c5a2-1f00-7c3e-9d1a-6b2f4e8a1c01', 'acme');

INSERT INTO webhooks (id, realm_id, name, endpoint, headers, secret) VALUES
  ('0198c5a3-0000-7000-8000-000000000001', '0198c5a2-1f00-7c3e-9d1a-6b2f4e8a1c01', 'crm',
   'http://127.0.0.1:' || :'port' || '/crm', '{"X-Tenant": "acme"}', :'secret'),
  ('0198c5a3-0000-7000-8000-000000000002', '0198c5a2-1f00-7c3e-9d1a-6b2f4e8a1c01', 'audit',
   'http://127.0.0.1:' || :'port' || '/flaky', '{}', :'secret'),
  ('0198c5a3-0000-7000-8000-000000000003', '0198c5a2-1f00-7c3e-9d1a-6b2f4e8a1c01', 'search',
   'http://127.0.0.1:' || :'port' || '/search', '{}', :'secret');

INSERT INTO webhook_subscribers (id, name, webhook_id)
SELECT gen_random_uuid(), event, '0198c5a3-0000-7000-8000-000000000001'::uuid
FROM unnest(ARRAY['user.created', 'user.updated', 'user.deleted', 'user.bulk_deleted',
                  'user.role.assigned']) AS event
UNION ALL
SELECT gen_random_uuid(), event, '0198c5a3-0000-7000-8000-000000000002'::uuid
FROM unnest(ARRAY['user.created', 'user.updated', 'user.role.assigned', 'user.bulk_deleted',
                  'user.deleted', 'auth.reset_password', 'client.created', 'client.deleted',
                  'role.created', 'role.permission.updated', 'realm.settings.updated',
                  'webhook.created']) AS event
UNION ALL
SELECT gen_random_uuid(), event, '0198c5a3-0000-7000-8000-000000000003'::uuid
FROM unnest(ARRAY['realm.settings.updated', 'role.created', 'role.permission.updated']) AS event;
