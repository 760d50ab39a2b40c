-- Per-tenant sliding window for max_events_per_sec, shared by every API process.
-- Ten 100 ms slots in a ring: slot_numbers[i] says which 100 ms slot (epoch ms / 100)
-- slot_counts[i] counts. Events in the last second = the sum over slots newer than now - 1 s.
-- One row per tenant, updated in place with the row locked (the tenant's admissions are
-- serialised across processes), in a short transaction just before the events are stored.
create table event_rate_windows (
  tenant_id     text primary key references tenants (id) on delete cascade,
  slot_numbers  bigint[] not null default array_fill(0::bigint, array[10]),
  slot_counts   integer[] not null default array_fill(0, array[10]),
  updated_at    timestamptz not null default now()
);
comment on table event_rate_windows is 'Events accepted per tenant in the last second, as ten 100 ms slots; read by GET /quotas (events_sent). Safe to delete a row: the window restarts empty.';
comment on column event_rate_windows.slot_numbers is 'The 100 ms slot (milliseconds since the epoch / 100) each entry of slot_counts belongs to.';
comment on column event_rate_windows.slot_counts is 'Events accepted in that slot.';
