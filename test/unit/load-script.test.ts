/**
 * The k6 script (test/load/events.js) cannot run here without k6, so this checks what can be
 * checked without it: it parses as a plain ES2020 module, imports only k6's modules, and —
 * with those modules stubbed — declares an open-loop scenario with the target thresholds and
 * sends what the contract asks for.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'acorn';
import { describe, expect, it, vi } from 'vitest';
import { ajv } from '../../src/http/validation.js';
import { createEventSchema } from '../../src/events/event-schemas.js';
import { createWebhookSchema } from '../../src/webhooks/webhook-schemas.js';

const SCRIPT = new URL('../load/events.js', import.meta.url);

interface Sent {
  method: string;
  url: string;
  body: unknown;
  headers: Record<string, string>;
}
const sent = vi.hoisted(() => [] as Sent[]);

vi.mock('k6', () => ({
  check: (value: unknown, checks: Record<string, (v: unknown) => boolean>) =>
    Object.values(checks).every((f) => f(value)),
  fail: (message: string) => {
    throw new Error(message);
  },
}));
vi.mock('k6/encoding', () => ({
  b64decode: (text: string) => Buffer.from(text, 'base64url').toString('utf8'),
}));
vi.mock('k6/metrics', () => ({
  Rate: class {
    add(): void {}
  },
  Trend: class {
    add(): void {}
  },
}));
vi.mock('k6/http', () => {
  const answer = (status: number, json: Record<string, unknown> = {}) => ({
    status,
    body: JSON.stringify(json),
    timings: { duration: 1 },
    json: (selector: string) =>
      selector.split('.').reduce<unknown>((v, key) => (v as Record<string, unknown>)[key], json),
  });
  const record = (method: string, url: string, body: string | null, params?: { headers?: object }) =>
    sent.push({
      method,
      url,
      body: body ? JSON.parse(body) : null,
      headers: (params?.headers ?? {}) as Record<string, string>,
    });
  return {
    default: {
      get: (url: string, params: { headers: object }) => {
        record('GET', url, null, params);
        return answer(200, { limits: { max_events_per_sec: 5000 } });
      },
      post: (url: string, body: string, params: { headers: object }) => {
        record('POST', url, body, params);
        return url.endsWith('/webhooks') ? answer(201, { id: 'wh_1' }) : answer(202);
      },
      del: (url: string, body: null, params: { headers: object }) => {
        record('DELETE', url, body, params);
        return answer(204);
      },
    },
  };
});

const token = `e30.${Buffer.from(JSON.stringify({ tenant_id: 'acme' })).toString('base64url')}.sig`;

describe('k6 load script test/load/events.js', () => {
  it('is a plain ES2020 module that imports only k6 modules', async () => {
    const program = parse(await readFile(SCRIPT, 'utf8'), { ecmaVersion: 2020, sourceType: 'module' });
    const imports = program.body.flatMap((node) =>
      node.type === 'ImportDeclaration' ? [String(node.source.value)] : [],
    );
    expect(imports.length).toBeGreaterThan(0);
    for (const source of imports) expect(source).toMatch(/^k6(\/|$)/);
  });

  it('runs an open-loop scenario against the targets, and sends events the contract accepts', async () => {
    Object.assign(globalThis, {
      __ENV: { BASE_URL: 'http://svc:3000/', TOKEN: token, WEBHOOK_URL: 'https://receiver.example/hook' },
      __VU: 1,
      __ITER: 0,
    });
    const script = (await import(SCRIPT.href)) as {
      options: {
        scenarios: Record<string, { executor: string; rate: number; timeUnit: string; duration: string }>;
        thresholds: Record<string, string[]>;
      };
      setup(): { webhookId: string | null };
      default(): void;
      teardown(data: { webhookId: string | null }): void;
    };

    const scenarios = Object.values(script.options.scenarios);
    expect(scenarios).toEqual([
      expect.objectContaining({
        executor: 'constant-arrival-rate',
        rate: 1000,
        timeUnit: '1s',
        duration: '1m',
      }),
    ]);
    const thresholds = Object.values(script.options.thresholds).flat();
    expect(thresholds).toContain('p(99)<25');
    expect(thresholds).toContain('rate<0.01');

    const data = script.setup();
    expect(data.webhookId).toBe('wh_1');
    script.default();
    script.teardown(data);

    expect(sent.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET http://svc:3000/quotas/acme',
      'POST http://svc:3000/webhooks',
      'POST http://svc:3000/events',
      'DELETE http://svc:3000/webhooks/wh_1',
    ]);
    const [, webhook, event] = sent;
    expect(ajv.validate(createWebhookSchema, webhook!.body), ajv.errorsText()).toBe(true);
    expect(webhook!.body).toMatchObject({
      url: 'https://receiver.example/hook',
      event_types: ['loadtest.event'],
    });
    expect(ajv.validate(createEventSchema, event!.body), ajv.errorsText()).toBe(true);
    expect(event!.body).toMatchObject({ type: 'loadtest.event', payload: { sent_at: expect.any(Number) } });
    expect(event!.headers).toMatchObject({
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
    });
  });
});
