-- Signing secrets encrypted at rest, and ed25519 signatures (Standard Webhooks v1a).
--
-- SQL has no key, so this migration only makes room: the rows it finds keep their plain-text
-- secret (secret_key_id null) until start-up, right after the migrations, encrypts them in
-- batches under the first key of SECRETS_KEYS / SECRETS_KEY (src/secrets/encrypt-at-rest.ts).
alter table webhooks
  add column signature_type text not null default 'hmac-sha256'
    check (signature_type in ('hmac-sha256', 'ed25519')),
  add column public_key text,
  add column secret_key_id text,
  add constraint webhooks_public_key_check check ((signature_type = 'ed25519') = (public_key is not null));

comment on column webhooks.secret is 'Encrypted signing secret, "v1:<key id>:<base64 of IV, tag and AES-256-GCM ciphertext>": an HMAC secret, or for ed25519 the private key. Plain text only while secret_key_id is null.';
comment on column webhooks.previous_secret is 'The secret before the last rotation, encrypted like secret; it also signs until previous_secret_expires_at.';
comment on column webhooks.signature_type is 'hmac-sha256 (signature v1, the default) or ed25519 (signature v1a, verified with public_key).';
comment on column webhooks.public_key is 'ed25519 only: "whpk_" + base64 of the 32-byte public key receivers verify with. Not a secret.';
comment on column webhooks.secret_key_id is 'Id of the SECRETS_KEYS key secret and previous_secret are encrypted under; null = not yet encrypted (encrypted at the next start-up).';

-- How many rows each key still holds (docs/runbook.md), and the rows start-up must encrypt.
create index webhooks_secret_key_id_idx on webhooks (secret_key_id);
