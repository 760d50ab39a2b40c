-- Webhook secrets per encryption key.
-- Answers: how many webhooks each key of SECRETS_KEYS still holds the secrets of (after
-- `npm run secrets:rotate` only the first key should appear; a key no row names can leave the
-- ring), how many are still plain text (written before migration 012 or by hand; the next
-- start-up encrypts them), and how many webhooks sign with each signature type.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/secrets-by-key.sql
\set ON_ERROR_STOP on

\echo 'Webhooks per key id (secret and previous_secret share their row''s key):'
select coalesce(secret_key_id, '(plain text)') as key_id,
       count(*) as webhooks,
       count(*) filter (where previous_secret is not null) as with_previous_secret
from webhooks
group by secret_key_id
order by secret_key_id nulls first;

\echo 'Webhooks per signature type:'
select signature_type, count(*) as webhooks
from webhooks
group by signature_type
order by signature_type;
