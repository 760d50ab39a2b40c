/**
 * The JSON answers in README.md's API examples are real answers: this test makes the README's
 * requests against the real service, with a real receiver, and compares each answer with the
 * block after its `<!-- answer: name -->` marker. Ids, secrets, times and durations are replaced
 * by stable stand-ins (the first id seen becomes the first stand-in, and so on); everything else
 * — fields, their order, values — must match. `UPDATE_README=1 npx vitest run <this file>`
 * writes the answers into the README instead.
 */
import fs from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { receiverPool, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

const README = new URL('../../README.md', import.meta.url);

let svc: TestService;
let receiver: Receiver;
const receivers = receiverPool();

beforeAll(async () => {
  // Six attempts, as with the default schedule, but seconds apart instead of hours.
  svc = await startTestService({ RETRY_SCHEDULE: '0.05,0.05,0.05,0.05,0.05' });
  receiver = await receivers.start();
});
afterAll(async () => {
  await receivers.closeAll();
  await svc?.stop();
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;
const STAND_IN_IDS = [
  '0b6f8c1e-3f7a-4c59-9a57-2f1d2c0e8a41',
  '5d2e7a90-8a0b-4d8e-b1a2-6c0f4e3b9d17',
  'c3a1f0d2-47e1-4b2a-9f6e-8d5b7a6c4e21',
  '7a1c3e5b-9d2f-4b6a-8c0e-1f3a5b7d9c2e',
  '9e4b2c6a-1d3f-4a8b-b7c5-0f2e6d9a3c18',
  '2f8d4b6e-0a1c-4e3f-9b5d-7c6a8e0f1b23',
];

/** Replaces what differs from run to run by stand-ins, the same value by the same stand-in. */
function standIns() {
  const ids = new Map<string, string>();
  const times = new Map<string, string>();
  const base = Date.parse('2026-01-15T10:30:00.000Z');
  return (text: string): string =>
    text
      .replace(UUID, (id) => {
        if (!ids.has(id))
          ids.set(
            id,
            STAND_IN_IDS[ids.size] ?? `00000000-0000-4000-8000-${String(ids.size).padStart(12, '0')}`,
          );
        return ids.get(id)!;
      })
      .replace(TIME, (time) => {
        if (!times.has(time)) times.set(time, new Date(base + times.size * 120).toISOString());
        return times.get(time)!;
      })
      .replace(/whsec_[A-Za-z0-9+/=]+/g, 'whsec_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0')
      .replace(/"duration_ms": \d+/g, '"duration_ms": 4')
      .replaceAll(receiver.url, 'http://127.0.0.1:4000');
}

it('README.md shows the answers the service gives', async () => {
  const token = await svc.token('acme');
  const shown = standIns();
  const answers = new Map<string, string>();
  const record = (name: string, body: unknown) => answers.set(name, shown(JSON.stringify(body, null, 2)));

  const webhook = await svc.call('POST', '/webhooks', {
    token,
    body: { url: `${receiver.url}/hooks`, event_types: ['order.*'], description: 'local receiver' },
  });
  expect(webhook.status).toBe(201);
  record('webhook-created', webhook.body);

  const event = await svc.call('POST', '/events', {
    token,
    headers: { 'idempotency-key': 'order-1001-created' },
    body: { type: 'order.created', payload: { order_id: '1001', amount: 99.99 } },
  });
  expect(event.status).toBe(202);
  record('event-accepted', event.body);
  const deliveryId = (event.body.delivery_ids as string[])[0]!;
  const delivery = await waitFor(
    async () => {
      const res = await svc.call('GET', `/deliveries/${deliveryId}`, { token });
      return res.body.status === 'succeeded' ? res : undefined;
    },
    15_000,
    'the delivery to succeed',
  );
  record('receiver-body', JSON.parse(receiver.requests[0]!.body));
  record('delivery', delivery.body);

  const quotas = await svc.call('GET', '/quotas/acme', { token });
  expect(quotas.status).toBe(200);
  record('quotas', quotas.body);

  receiver.respond({ kind: 'status', status: 503 });
  const failing = await svc.call('POST', '/events', {
    token,
    body: { type: 'order.cancelled', payload: { order_id: '1001' } },
  });
  expect(failing.status).toBe(202);
  const dlq = await waitFor(
    async () => {
      const res = await svc.call('GET', '/dlq?limit=10', { token });
      return res.body.total === 1 ? res : undefined;
    },
    15_000,
    'the dead letter',
  );
  record('dlq', dlq.body);

  const options = (await resolveConfig(README)) ?? {};
  let readme = fs.readFileSync(README, 'utf8');
  const mismatches: string[] = [];
  for (const [name, answer] of answers) {
    const block = new RegExp(`(<!-- answer: ${name} -->\\n\\n\`\`\`json\\n)([\\s\\S]*?)(\`\`\`)`);
    const found = block.exec(readme);
    expect(found, `README.md has no block marked <!-- answer: ${name} -->`).not.toBeNull();
    const expected = await format(answer, { ...options, parser: 'json' });
    if (found![2] !== expected) {
      mismatches.push(`${name}:\nREADME:\n${found![2]}real answer:\n${expected}`);
      readme = readme.replace(
        block,
        (_, open: string, _old: string, close: string) => open + expected + close,
      );
    }
  }
  if (process.env.UPDATE_README === '1') fs.writeFileSync(README, readme);
  else expect(mismatches, 'run with UPDATE_README=1 to write the real answers').toEqual([]);
});
