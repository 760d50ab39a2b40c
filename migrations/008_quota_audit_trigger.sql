-- Every change of a tenant's limits leaves an audit row, whoever makes it: PUT /quotas, the
-- runbook script, or a plain UPDATE in psql. The writer may say who it is for this transaction
-- (`set_config('hookrelay.actor', …, true)`, likewise hookrelay.request_id and hookrelay.via);
-- otherwise the actor is the database role, as "db:<role>".
create function audit_quota_change() returns trigger
language plpgsql
as $$
begin
  insert into audit_log (actor, action, object_type, object_id, tenant_id, request_id, details)
  values (
    coalesce(nullif(current_setting('hookrelay.actor', true), ''), 'db:' || current_user),
    'quota.updated',
    'quota',
    new.tenant_id,
    new.tenant_id,
    nullif(current_setting('hookrelay.request_id', true), ''),
    jsonb_strip_nulls(jsonb_build_object(
      'before', jsonb_build_object(
        'max_events_per_sec', old.max_events_per_sec,
        'max_concurrent_deliveries', old.max_concurrent_deliveries,
        'max_dlq_size', old.max_dlq_size),
      'after', jsonb_build_object(
        'max_events_per_sec', new.max_events_per_sec,
        'max_concurrent_deliveries', new.max_concurrent_deliveries,
        'max_dlq_size', new.max_dlq_size),
      'via', nullif(current_setting('hookrelay.via', true), '')))
  );
  return null;
end;
$$;

create trigger quotas_audit
  after update on quotas
  for each row
  when ((old.max_events_per_sec, old.max_concurrent_deliveries, old.max_dlq_size)
        is distinct from (new.max_events_per_sec, new.max_concurrent_deliveries, new.max_dlq_size))
  execute function audit_quota_change();
comment on trigger quotas_audit on quotas is 'Writes a quota.updated audit_log row for every change of a limit, whoever makes it.';
