-- The service's schema. Every table is meant to be read, and where the runbook says so changed,
-- by an operator in psql. graphile-worker keeps its own schema (graphile_worker.*).

create table tenants (
  id          text primary key,
  created_at  timestamptz not null default now()
);
comment on table tenants is 'A customer of the service. Created on first use by a token whose tenant_id is new.';

create table quotas (
  tenant_id                  text primary key references tenants (id) on delete cascade,
  max_events_per_sec         integer not null default 100 check (max_events_per_sec >= 0),
  max_concurrent_deliveries  integer not null default 50 check (max_concurrent_deliveries >= 0),
  max_dlq_size               integer not null default 100 check (max_dlq_size >= 0),
  updated_at                 timestamptz not null default now()
);
comment on table quotas is 'Per-tenant limits; the single source of truth. An UPDATE here takes effect in every process within 5 s.';
comment on column quotas.max_events_per_sec is 'POST /events accepted per second for the tenant as a whole; more get 429.';
comment on column quotas.max_concurrent_deliveries is 'Outbound requests in flight at once for the tenant, across all worker processes.';
comment on column quotas.max_dlq_size is 'Dead-lettered deliveries the tenant may hold; see docs/api.md for what happens when full.';

create table webhooks (
  id                           uuid primary key,
  tenant_id                    text not null references tenants (id) on delete cascade,
  url                          text not null,
  description                  text,
  event_types                  text[] not null,
  secret                       text not null,
  previous_secret              text,
  previous_secret_expires_at   timestamptz,
  timeout_ms                   integer check (timeout_ms between 1 and 30000),
  enabled                      boolean not null default true,
  disabled_reason              text,
  disabled_at                  timestamptz,
  failing_since                timestamptz,
  created_at                   timestamptz not null default now(),
  updated_at                   timestamptz not null default now()
);
comment on table webhooks is 'Subscriptions: a tenant''s endpoint URL and the event types it receives.';
comment on column webhooks.event_types is 'Exact names, "prefix.*", or "*".';
comment on column webhooks.secret is 'Signing secret; "whsec_" + base64 key, or any string given at creation.';
comment on column webhooks.previous_secret is 'The secret before the last rotation; it also signs until previous_secret_expires_at.';
comment on column webhooks.timeout_ms is 'Per-attempt timeout; null = DELIVERY_TIMEOUT_MS.';
comment on column webhooks.enabled is 'false = deliveries wait (status paused) until it is enabled again.';
comment on column webhooks.disabled_reason is 'Why it was disabled: by whom, or automatically (410 Gone, failing too long).';
comment on column webhooks.failing_since is 'Start of the current unbroken run of failed attempts; null after a success.';
create index webhooks_tenant_idx on webhooks (tenant_id, created_at desc, id);

create table events (
  id               uuid primary key,
  tenant_id        text not null references tenants (id) on delete cascade,
  type             text not null,
  payload          jsonb not null,
  idempotency_key  text,
  created_at       timestamptz not null default now()
);
comment on table events is 'Accepted events, committed before the 202. Kept for the retention period.';
create index events_tenant_created_idx on events (tenant_id, created_at desc, id);
create index events_created_idx on events (created_at);

create table deliveries (
  id              uuid primary key,
  event_id        uuid not null references events (id) on delete cascade,
  webhook_id      uuid not null references webhooks (id) on delete cascade,
  tenant_id       text not null references tenants (id) on delete cascade,
  status          text not null default 'pending'
                  check (status in ('pending', 'succeeded', 'failed', 'dead', 'paused')),
  attempt_count   integer not null default 0,
  next_attempt_at timestamptz,
  last_error      text,
  last_status_code integer,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  succeeded_at    timestamptz
);
comment on table deliveries is 'One event to one webhook. Its id is the webhook-id header, the same on every retry.';
comment on column deliveries.status is 'pending (queued or in flight), succeeded, failed (retry scheduled), dead (in dlq), paused (webhook disabled).';
comment on column deliveries.attempt_count is 'Attempts made so far in the current series (a DLQ retry starts a new series).';
comment on column deliveries.next_attempt_at is 'When the next attempt is due, for failed deliveries.';
create index deliveries_event_idx on deliveries (event_id);
create index deliveries_webhook_status_idx on deliveries (webhook_id, status, created_at);
create index deliveries_tenant_status_idx on deliveries (tenant_id, status);
create index deliveries_created_idx on deliveries (created_at);

create table delivery_attempts (
  id               bigint generated always as identity primary key,
  delivery_id      uuid not null references deliveries (id) on delete cascade,
  attempt_number   integer not null,
  attempted_at     timestamptz not null default now(),
  status_code      integer,
  error            text,
  duration_ms      integer not null,
  response_body    text,
  response_headers jsonb,
  unique (delivery_id, attempt_number, attempted_at)
);
comment on table delivery_attempts is 'Every outbound request made for a delivery, in time order.';
comment on column delivery_attempts.status_code is 'HTTP status, null when no answer came (timeout, refused, reset, blocked).';
comment on column delivery_attempts.error is 'Null on success; else e.g. "HTTP 503: Service Unavailable", "timeout after 10000 ms".';
comment on column delivery_attempts.response_body is 'First 4 KiB of the response body.';
create index delivery_attempts_delivery_idx on delivery_attempts (delivery_id, attempted_at);
create index delivery_attempts_attempted_idx on delivery_attempts (attempted_at);

create table dlq (
  delivery_id  uuid primary key references deliveries (id) on delete cascade,
  tenant_id    text not null references tenants (id) on delete cascade,
  webhook_id   uuid not null references webhooks (id) on delete cascade,
  event_id     uuid not null references events (id) on delete cascade,
  last_error   text not null,
  attempts     integer not null,
  created_at   timestamptz not null default now()
);
comment on table dlq is 'Dead letters: deliveries whose retries are spent, or whose destination is refused. Retry or delete via the API.';
create index dlq_tenant_created_idx on dlq (tenant_id, created_at desc, delivery_id);
create index dlq_webhook_created_idx on dlq (webhook_id, created_at desc);
create index dlq_created_idx on dlq (created_at desc, delivery_id);

create table audit_log (
  id           bigint generated always as identity primary key,
  at           timestamptz not null default now(),
  actor        text not null,
  action       text not null,
  object_type  text not null,
  object_id    text,
  tenant_id    text,
  request_id   text,
  details      jsonb not null default '{}'
);
comment on table audit_log is 'Who changed what: webhook changes, DLQ retries and deletions, resends, quota changes.';
comment on column audit_log.actor is '"<tenant_id>:<role>" from the token, or "system" for automatic actions.';
create index audit_log_tenant_at_idx on audit_log (tenant_id, at desc, id);
create index audit_log_at_idx on audit_log (at desc, id);

create table idempotency_keys (
  tenant_id   text not null references tenants (id) on delete cascade,
  key         text not null,
  event_id    uuid not null,
  response    jsonb not null,
  created_at  timestamptz not null default now(),
  primary key (tenant_id, key)
);
comment on table idempotency_keys is 'Idempotency-Key of POST /events per tenant, with the first answer; honoured for 24 h.';
create index idempotency_keys_created_idx on idempotency_keys (created_at);

create table worker_heartbeats (
  worker_id    text primary key,
  hostname     text not null,
  pid          integer not null,
  started_at   timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);
comment on table worker_heartbeats is 'One row per running worker process; a stale last_seen_at means the process is gone and its jobs are released.';
