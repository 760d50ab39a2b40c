/** Checks of FIFO order (ordering 'fifo') over what a receiver got, for the FIFO tests. */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import type { ReceivedRequest } from './receiver.js';

/** Each delivery's place in its webhook's order (deliveries.fifo_seq), by delivery id. */
export async function fifoSeqs(db: Kysely<Database>, webhookId: string): Promise<Map<string, number>> {
  const { rows } = await sql<{ id: string; fifo_seq: string }>`
    select id, fifo_seq from deliveries where webhook_id = ${webhookId}`.execute(db);
  return new Map(rows.map((row) => [row.id, Number(row.fifo_seq)]));
}

/**
 * What breaks FIFO order in the requests a receiver got, in arrival order: a request for a
 * delivery after a later one had succeeded (a reorder), or for one whose predecessor had not yet
 * succeeded (sent too early). A repeat of the last one (at-least-once) is fine.
 * `succeeded(request)` says whether the receiver answered it with success.
 */
export function fifoViolations(
  requests: readonly ReceivedRequest[],
  seqOf: ReadonlyMap<string, number>,
  succeeded: (request: ReceivedRequest) => boolean,
): string[] {
  const problems: string[] = [];
  let done = 0; // the highest place delivered so far; places start at 1
  const first = Math.min(...seqOf.values());
  done = first - 1;
  for (const request of requests) {
    const seq = seqOf.get(String(request.headers['webhook-id']));
    if (seq === undefined) {
      problems.push(`request ${request.index}: unknown delivery ${String(request.headers['webhook-id'])}`);
      continue;
    }
    if (seq < done) problems.push(`request ${request.index}: #${seq} after #${done} had succeeded`);
    if (seq > done + 1) problems.push(`request ${request.index}: #${seq} before #${done + 1} had succeeded`);
    if (succeeded(request) && seq === done + 1) done = seq;
  }
  return problems;
}
