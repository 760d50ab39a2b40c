import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { blockedHosts } from '../helpers/ssrf-addresses.js';

let svc: TestService;
let token: string;
let admin: string;
let webhookId: string;

beforeAll(async () => {
  // No allowlist: every private destination is refused, as in production.
  svc = await startTestService({ NUM_WORKERS: '0', SSRF_ALLOWLIST: '' });
  token = await svc.token('acme');
  admin = await svc.token('ops', { admin: true });
  const res = await svc.call('POST', '/webhooks', {
    token,
    body: { url: 'https://example.com/hook', event_types: ['*'] },
  });
  webhookId = res.body.id;
});
afterAll(async () => {
  await svc?.stop();
});
afterEach(async () => {
  // Whatever the input was, the process still answers.
  expect((await svc.call('GET', '/health')).status).toBe(200);
});

function expectError(res: { status: number; body: any }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)?.slice(0, 500)).toBe(status);
  expect(res.body).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
}

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const validWebhook = { url: 'https://example.com/h', event_types: ['a.b'] };
const validEvent = { type: 'a.b', payload: {} };

// Every blocked spelling but three: a trailing dot, a bare 0 and a subdomain of localhost.
const BLOCKED = blockedHosts(['127.0.0.1.', '0', 'api.localhost']);

describe('POST /webhooks refuses every blocked address spelling', () => {
  it.each(BLOCKED)('http://%s/', async (host) => {
    for (const url of [`http://${host}/hook`, `https://${host}:8443/x?y=z`]) {
      const res = await svc.call('POST', '/webhooks', { token, body: { url, event_types: ['*'] } });
      expectError(res, 400, 'invalid_request');
      expect(res.body.error.details).toEqual([
        { field: '/url', message: expect.stringMatching(/blocked destination/) },
      ]);
    }
    const patch = await svc.call('PATCH', `/webhooks/${webhookId}`, {
      token,
      body: { url: `http://${host}/` },
    });
    expectError(patch, 400, 'invalid_request');
  });
});

type Row = [name: string, body: unknown, fields: string[]];

const webhookRows: Row[] = [
  ['missing url', { event_types: ['a'] }, ['/url']],
  ['missing event_types', { url: 'https://example.com' }, ['/event_types']],
  ['missing both', {}, ['/url', '/event_types']],
  ['url of the wrong type', { ...validWebhook, url: 42 }, ['/url']],
  ['event_types a string', { ...validWebhook, event_types: 'a.b' }, ['/event_types']],
  ['event_types empty', { ...validWebhook, event_types: [] }, ['/event_types']],
  ['event_types with a bad pattern', { ...validWebhook, event_types: ['*.created'] }, ['/event_types/0']],
  ['event_types with a space', { ...validWebhook, event_types: ['ok', 'a b'] }, ['/event_types/1']],
  ['event_types with a middle star', { ...validWebhook, event_types: ['a.*.b'] }, ['/event_types/0']],
  ['event_types with an empty entry', { ...validWebhook, event_types: [''] }, ['/event_types/0']],
  ['event_types duplicated', { ...validWebhook, event_types: ['a', 'a'] }, ['/event_types']],
  [
    'too many event_types',
    { ...validWebhook, event_types: Array.from({ length: 101 }, (_, i) => `t${i}`) },
    ['/event_types'],
  ],
  ['event_types entry of the wrong type', { ...validWebhook, event_types: [{ a: 1 }] }, ['/event_types/0']],
  ['unknown field', { ...validWebhook, colour: 'red' }, ['/colour']],
  [
    'two unknown fields and a bad one',
    { ...validWebhook, a: 1, b: 2, timeout_ms: -1 },
    ['/a', '/b', '/timeout_ms'],
  ],
  ['url longer than 2048', { ...validWebhook, url: `https://example.com/${'a'.repeat(2040)}` }, ['/url']],
  ['a 200 KB url', { ...validWebhook, url: `https://example.com/${'a'.repeat(200_000)}` }, ['/url']],
  ['a 200 KB description', { ...validWebhook, description: 'd'.repeat(200_000) }, ['/description']],
  ['timeout_ms 0', { ...validWebhook, timeout_ms: 0 }, ['/timeout_ms']],
  ['timeout_ms above 30000', { ...validWebhook, timeout_ms: 30001 }, ['/timeout_ms']],
  ['timeout_ms fractional', { ...validWebhook, timeout_ms: 1.5 }, ['/timeout_ms']],
  ['timeout_ms as a string', { ...validWebhook, timeout_ms: '100' }, ['/timeout_ms']],
  ['empty secret', { ...validWebhook, secret: '' }, ['/secret']],
  ['secret too long', { ...validWebhook, secret: 's'.repeat(1025) }, ['/secret']],
  ['whsec_ secret that is not base64', { ...validWebhook, secret: 'whsec_??' }, ['/secret']],
  ['enabled as a string', { ...validWebhook, enabled: 'yes' }, ['/enabled']],
  ['tenant_id of the wrong type', { ...validWebhook, tenant_id: 7 }, ['/tenant_id']],
  ['body an array', [validWebhook], ['/']],
  ['body a string', '"hello"', ['/']],
  ['body null', 'null', ['/']],
  ['deeply nested url', `{"url": ${nested(100_000)}, "event_types": ["a"]}`, ['/url']],
  ['ftp url', { ...validWebhook, url: 'ftp://example.com/' }, ['/url']],
  ['javascript url', { ...validWebhook, url: 'javascript:alert(1)' }, ['/url']],
  ['file url', { ...validWebhook, url: 'file:///etc/passwd' }, ['/url']],
  ['url with credentials', { ...validWebhook, url: 'https://user:pass@example.com/' }, ['/url']],
  ['not a url', { ...validWebhook, url: 'not a url' }, ['/url']],
  ['url with a space', { ...validWebhook, url: 'https://exa mple.com/' }, ['/url']],
  ['url with a newline', { ...validWebhook, url: 'https://example.com/\n' }, ['/url']],
  ['url without a host', { ...validWebhook, url: 'http://' }, ['/url']],
  ['url with a bad IPv6', { ...validWebhook, url: 'http://[::1/' }, ['/url']],
];

describe('POST /webhooks: bad bodies', () => {
  it.each(webhookRows)('%s → 400 naming each field', async (_name, body, fields) => {
    const res = await svc.call('POST', '/webhooks', { token, body });
    expectError(res, 400, 'invalid_request');
    expect(res.body.error.details.map((d: any) => d.field).sort()).toEqual([...fields].sort());
    expect(JSON.stringify(res.body).length).toBeLessThan(4000);
  });

  it('an admin naming a malformed tenant_id gets a 400', async () => {
    const res = await svc.call('POST', '/webhooks', {
      token: admin,
      body: { ...validWebhook, tenant_id: 'no spaces please' },
    });
    expectError(res, 400, 'invalid_request');
  });

  it('PATCH and rotate-secret refuse bad bodies too', async () => {
    for (const body of [{ enabled: 'no' }, { event_types: [] }, { nope: 1 }, { timeout_ms: 99999 }, [], {}]) {
      expectError(await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body }), 400, 'invalid_request');
    }
    for (const body of [{ secret: 5 }, { other: 1 }, { secret: '' }]) {
      expectError(
        await svc.call('POST', `/webhooks/${webhookId}/rotate-secret`, { token, body }),
        400,
        'invalid_request',
      );
    }
  });
});

const eventRows: Row[] = [
  ['missing type', { payload: {} }, ['/type']],
  ['missing payload', { type: 'a' }, ['/payload']],
  ['missing both', {}, ['/type', '/payload']],
  ['payload an array', { type: 'a', payload: [1, 2] }, ['/payload']],
  ['payload a string', { type: 'a', payload: 'text' }, ['/payload']],
  ['payload null', { type: 'a', payload: null }, ['/payload']],
  ['type a number', { type: 5, payload: {} }, ['/type']],
  ['type with a space', { type: 'a b', payload: {} }, ['/type']],
  ['type empty', { type: '', payload: {} }, ['/type']],
  ['type of 129 characters', { type: 't'.repeat(129), payload: {} }, ['/type']],
  ['a 200 KB type', { type: 't'.repeat(200_000), payload: {} }, ['/type']],
  ['type with a star', { type: 'a.*', payload: {} }, ['/type']],
  ['unknown field', { ...validEvent, extra: true }, ['/extra']],
  ['tenant_id of the wrong type', { ...validEvent, tenant_id: ['acme'] }, ['/tenant_id']],
  ['payload nested 65 levels', `{"type":"a","payload":{"x":${nested(64)}}}`, ['/payload']],
  ['payload nested 100000 levels', `{"type":"a","payload":{"x":${nested(100_000)}}}`, ['/payload']],
  ['type deeply nested', `{"type":${nested(100_000)},"payload":{}}`, ['/type']],
  ['body an array', [validEvent], ['/']],
  ['body a number', '42', ['/']],
];

describe('POST /events: bad bodies', () => {
  it.each(eventRows)('%s → 400 naming each field', async (_name, body, fields) => {
    const before = await svc.service.database.db
      .selectFrom('events')
      .select(({ fn }) => fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    const res = await svc.call('POST', '/events', { token, body });
    expectError(res, 400, 'invalid_request');
    expect(res.body.error.details.map((d: any) => d.field).sort()).toEqual([...fields].sort());
    const after = await svc.service.database.db
      .selectFrom('events')
      .select(({ fn }) => fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('a payload nested exactly 64 levels is accepted', async () => {
    const res = await svc.call('POST', '/events', {
      token,
      body: `{"type":"a","payload":{"x":${nested(63)}}}`,
    });
    expect(res.status).toBe(202);
  });

  it('a big flat payload within MAX_PAYLOAD_BYTES is accepted', async () => {
    const res = await svc.call('POST', '/events', {
      token,
      body: { type: 'big', payload: { text: 'x'.repeat(250_000) } },
    });
    expect(res.status).toBe(202);
  });
});

/** A request with exactly these headers (fetch would add a content type). */
function rawRequest(method: string, path: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = http.request(svc.url + path, { method, headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('transport-level refusals', () => {
  const paths: [string, string][] = [
    ['POST', '/webhooks'],
    ['POST', '/events'],
    ['PATCH', '/webhooks/WEBHOOK'],
    ['POST', '/webhooks/WEBHOOK/rotate-secret'],
  ];
  const at = (path: string) => path.replace('WEBHOOK', webhookId);

  it.each(paths)('%s %s: not JSON → 400', async (method, path) => {
    for (const body of ['{"type": "a", ', 'plain words', '{"a":1}}', '\u0000', '']) {
      const res = await svc.call(method, at(path), { token, body: body || ' ' });
      expectError(res, 400, 'invalid_request');
    }
  });

  it.each(paths)('%s %s: wrong content type → 415', async (method, path) => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await svc.call(method, at(path), {
        token,
        body: JSON.stringify(validEvent),
        headers: { 'content-type': type },
      });
      expectError(res, 415, 'unsupported_media_type');
    }
    const none = await rawRequest(
      method,
      at(path),
      { authorization: `Bearer ${token}`, 'content-length': '2' },
      '{}',
    );
    expectError(none, 415, 'unsupported_media_type');
  });

  it.each(paths)('%s %s: a 300 KiB body → 413', async (method, path) => {
    const body = JSON.stringify({ type: 'a', payload: { filler: 'x'.repeat(300 * 1024) } });
    expectError(await svc.call(method, at(path), { token, body }), 413, 'payload_too_large');
    // Without a Content-Length (chunked), the limit holds while reading.
    const chunked = await rawRequest(
      method,
      at(path),
      {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      },
      body,
    );
    expectError(chunked, 413, 'payload_too_large');
  });

  it('a method a path does not serve is a 404 naming both, after authentication', async () => {
    for (const [method, path] of [
      ['DELETE', '/events'],
      ['PUT', '/events'],
      ['OPTIONS', '/events'],
      ['PATCH', '/webhooks'],
      ['POST', `/webhooks/${webhookId}`],
      ['DELETE', '/quotas/acme'],
    ] as const) {
      const res = await svc.call(method, path, { token });
      expectError(res, 404, 'not_found');
      expect(res.body.error.message).toBe(`No route for ${method} ${path}.`);
      expectError(await svc.call(method, path), 401, 'unauthorized');
    }
  });

  it('bad query strings are 400s', async () => {
    for (const path of [
      '/webhooks?limit=abc',
      '/webhooks?limit=501',
      '/webhooks?enabled=maybe',
      '/events?limit=-5',
      '/events?offset=x',
      '/events?limit=1&limit=2',
      `/webhooks/${webhookId}?x=1`,
    ]) {
      expectError(await svc.call('GET', path, { token }), 400, 'invalid_request');
    }
    // A parameter given twice is named as such, not as the wrong type.
    const repeated = await svc.call('GET', '/events?limit=1&limit=2', { token });
    expect(repeated.body.error.details).toEqual([{ field: '/limit', message: 'is repeated; give it once' }]);
  });

  it('a number no integer can hold (1e999) is a 400 on every list route, never a 500', async () => {
    const admin = await svc.token('ops', { admin: true });
    for (const list of ['/webhooks', '/events', '/dlq', '/audit-log']) {
      for (const query of ['limit=1e999', 'offset=1e999', 'limit=-1e999']) {
        const res = await svc.call('GET', `${list}?${query}`, { token: admin });
        expectError(res, 400, 'invalid_request');
        expect(res.body.error.details[0].field, `${list}?${query}`).toBe(`/${query.split('=')[0]}`);
      }
    }
    // In a body it would parse to Infinity and be stored as null: refused instead.
    const body = await svc.call('POST', '/events', { token, body: '{"type":"n.big","payload":{"n":1e999}}' });
    expectError(body, 400, 'invalid_request');
  });
});
