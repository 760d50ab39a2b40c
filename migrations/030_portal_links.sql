-- One-time sign-in links of the tenant portal (POST /portal/sessions). Only a hash of the
-- link's token is kept: a copy of this table signs nobody in.
create table portal_links (
  token_hash  text primary key,
  tenant_id   text not null references tenants (id) on delete cascade,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  used_at     timestamptz
);
comment on table portal_links is 'One-time portal sign-in links: SHA-256 of the token, tenant, expiry (10 min), when it was used.';
create index portal_links_expires_idx on portal_links (expires_at);
