/**
 * `service_settings`: the configuration SQL needs when it runs without the service, e.g. the
 * largest payload hookrelay.emit() accepts. Written at every start-up, so the last process to
 * start decides (run every process with the same configuration).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

export interface ServiceSettingTable {
  name: string;
  value: string;
  updated_at: Date;
}

export async function writeServiceSettings(
  db: Kysely<Database>,
  settings: Record<string, string>,
): Promise<void> {
  const rows = Object.entries(settings).map(([name, value]) => ({ name, value }));
  await sql`
    insert into service_settings (name, value)
    select name, value from json_to_recordset(${JSON.stringify(rows)}::json) as s(name text, value text)
    on conflict (name) do update set value = excluded.value, updated_at = now()
     where service_settings.value is distinct from excluded.value
  `.execute(db);
}
