-- Revoking a tenant's API tokens (POST /tenants/:tenant_id/revoke-tokens): every process keeps
-- these times in memory, refreshed on NOTIFY hookrelay_tokens_revoked and re-read every second.
alter table tenants add column tokens_valid_after timestamptz;
comment on column tenants.tokens_valid_after is 'Tokens of this tenant issued (iat) in this second or before are refused (401); null = none revoked.';
create index tenants_tokens_revoked_idx on tenants (id) where tokens_valid_after is not null;
