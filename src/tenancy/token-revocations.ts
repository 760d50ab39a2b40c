/**
 * Each tenant's `tokens_valid_after`, kept in memory so that every request can be checked
 * against it without a query. A revocation reaches every process within a second or so: on its
 * commit through NOTIFY (a connection of its own, LISTENing), and whatever happens to that
 * connection, through a re-read of the table every `refreshMs`.
 */
import pg from 'pg';
import type { Db } from '../db/database.js';
import { startPeriodicSweep } from '../db/periodic-sweep.js';
import type { Logger } from '../observability/logger.js';
import { TOKENS_REVOKED_CHANNEL, tokenRevocationTimes } from './tenant-repository.js';

export interface TokenRevocations {
  /** When the tenant's tokens were last revoked (ms), if ever. */
  validAfter(tenantId: string): number | undefined;
  /** A revocation this process just made, applied here at once. */
  note(tenantId: string, at: Date): void;
  stop(): Promise<void>;
}

export async function startTokenRevocations(deps: {
  db: Db;
  databaseUrl: string;
  logger: Logger;
  refreshMs?: number;
}): Promise<TokenRevocations> {
  const { db, logger } = deps;
  const refreshMs = deps.refreshMs ?? 1000;
  const times = new Map<string, number>();
  const note = (tenantId: string, at: number) => {
    // Never earlier than what is known: a re-read racing a NOTIFY must not undo it.
    if (Number.isFinite(at) && at > (times.get(tenantId) ?? -Infinity)) times.set(tenantId, at);
  };
  const reread = async () => {
    for (const row of await tokenRevocationTimes(db)) note(row.id, row.tokens_valid_after.getTime());
  };
  // Start-up waits for the first read: a process must not accept revoked tokens while it starts.
  await reread();

  let listener: pg.Client | undefined;
  let stopped = false;
  const listen = async () => {
    const client = new pg.Client({ connectionString: deps.databaseUrl });
    client.on('error', () => {
      // The re-read goes on; the next tick connects again.
      if (listener === client) listener = undefined;
      void client.end().catch(() => undefined);
    });
    client.on('notification', (message) => {
      try {
        const { tenant_id, tokens_valid_after } = JSON.parse(message.payload ?? '') as {
          tenant_id: string;
          tokens_valid_after: string;
        };
        note(tenant_id, Date.parse(tokens_valid_after));
      } catch {
        // Not ours to understand: the re-read has it within a second.
      }
    });
    try {
      await client.connect();
      await client.query(`listen ${TOKENS_REVOKED_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (stopped) await client.end();
    else listener = client;
  };

  await listen().catch((err: unknown) =>
    logger.warn('token revocations: LISTEN not started; re-reading only', {
      err: err instanceof Error ? err.message : String(err),
    }),
  );
  // Whatever happened to the LISTEN connection, the re-read goes on and reconnects it.
  const refresh = startPeriodicSweep({
    name: 'token revocations refresh',
    everyMs: refreshMs,
    logger,
    run: () => Promise.all([reread(), listener ? undefined : listen()]),
  });

  return {
    validAfter: (tenantId) => times.get(tenantId),
    note: (tenantId, at) => note(tenantId, at.getTime()),
    async stop() {
      stopped = true;
      await refresh.stop();
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
    },
  };
}
