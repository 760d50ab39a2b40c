-- max_concurrent_deliveries across every worker process: a delivery holds a lease while its
-- request is in flight. A worker that dies leaves its leases behind; the heartbeat sweeper
-- deletes the leases of workers whose heartbeat is stale.
create table delivery_leases (
  delivery_id  uuid primary key references deliveries (id) on delete cascade,
  tenant_id    text not null references tenants (id) on delete cascade,
  worker_id    text not null,
  acquired_at  timestamptz not null default now()
);
comment on table delivery_leases is 'Deliveries in flight right now, one row each; count per tenant = concurrent deliveries. Rows of dead workers are swept.';
comment on column delivery_leases.worker_id is 'The worker process (worker_heartbeats.worker_id) making the request.';
create index delivery_leases_tenant_idx on delivery_leases (tenant_id);
create index delivery_leases_worker_idx on delivery_leases (worker_id);

-- Takes a lease for one delivery if the tenant has room under max_concurrent_deliveries.
-- A function so that the count runs after the tenant's lock is held (a fresh snapshot per
-- statement), in one round trip. Returns true when the lease is held (also when it already was).
create function acquire_delivery_lease(p_tenant_id text, p_delivery_id uuid, p_worker_id text)
returns boolean
language plpgsql
as $$
declare
  v_limit integer;
  v_in_flight integer;
begin
  -- Serialises lease decisions per tenant across all processes, without touching quotas rows.
  perform pg_advisory_xact_lock(hashtext('delivery_leases'), hashtext(p_tenant_id));
  update delivery_leases set worker_id = p_worker_id, acquired_at = now() where delivery_id = p_delivery_id;
  if found then
    return true;
  end if;
  select max_concurrent_deliveries into v_limit from quotas where tenant_id = p_tenant_id;
  select count(*) into v_in_flight from delivery_leases where tenant_id = p_tenant_id;
  if v_in_flight >= coalesce(v_limit, 50) then
    return false;
  end if;
  insert into delivery_leases (delivery_id, tenant_id, worker_id) values (p_delivery_id, p_tenant_id, p_worker_id);
  return true;
end;
$$;
comment on function acquire_delivery_lease(text, uuid, text) is 'Lease for one in-flight delivery if the tenant is under max_concurrent_deliveries.';
