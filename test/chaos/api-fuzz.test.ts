/**
 * Input fuzzing with fast-check: generated methods, paths, query strings, headers and bodies
 * against every route of the OpenAPI document (and a few that are not there), then raw bytes
 * on the socket. Never a 500, never a crash, and every answer of 400 or more in the error
 * shape `{"error": {"code", "message"}}`.
 */
import http from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { startTestService, TEST_JWT_SECRET, type TestService } from '../helpers/service.js';
import { apiRoutes, report, size } from './support.js';

const RUNS = size(3000, 20_000);
const RAW_RUNS = size(1000, 5000);

let svc: TestService;
let port: number;
let tenantToken: string;
let adminToken: string;
let webhookId: string;
let eventId: string;
let deliveryId: string;

/** Route templates from the OpenAPI document, plus what it leaves out. */
const ROUTES: [method: string, template: string][] = [
  ...apiRoutes(),
  ['GET', '/health'],
  ['GET', '/metrics'],
];

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0', SSRF_ALLOWLIST: '' });
  port = svc.service.port!;
  tenantToken = await svc.token('fuzz');
  adminToken = await svc.token('ops', { admin: true });
  const webhook = await svc.call('POST', '/webhooks', {
    token: tenantToken,
    body: { url: 'https://example.com/hook', event_types: ['*'] },
  });
  webhookId = webhook.body.id;
  const event = await svc.call('POST', '/events', {
    token: tenantToken,
    body: { type: 'fuzz.seed', payload: { a: 1 } },
  });
  eventId = event.body.event_id;
  deliveryId = event.body.delivery_ids[0];
});
afterAll(async () => {
  await svc?.stop();
});
afterEach(async () => {
  // Whatever came in, the service still answers.
  expect((await svc.call('GET', '/health')).status).toBe(200);
});

interface Answer {
  status: number;
  text: string;
  contentType: string | undefined;
}

function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
): Promise<Answer> {
  // With a declared length the request is well framed whatever the method (broken framing is
  // the raw-socket test's business; Node's client would send a GET body unframed).
  if (body !== undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
          contentType: res.headers['content-type'],
        }),
      );
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer in 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The contract's error shape, without a stack trace. */
function checkAnswer(method: string, answer: Answer, what: string): void {
  expect(answer.status, what).not.toBe(500);
  expect(answer.status, what).toBeLessThan(600);
  if (answer.status < 400 || method === 'HEAD') return;
  // Under /portal/ (its pages, not POST /portal/sessions) an error may be a page for a person.
  if (/^[A-Z]+ \/portal\/(?!sessions(?:[?#]|$))/.test(what) && /^text\/html/.test(answer.contentType ?? ''))
    return;
  expect(answer.contentType, what).toMatch(/^application\/json/);
  const parsed = JSON.parse(answer.text) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof parsed.error?.code, what).toBe('string');
  expect(parsed.error!.code, what).toMatch(/^[a-z_]+$/);
  expect(typeof parsed.error?.message, what).toBe('string');
  expect(answer.text, what).not.toMatch(/\bat .+\.(ts|js):\d+/);
}

// --- generators ---------------------------------------------------------------------------

/** encodeURIComponent for any string, lone surrogates included (as U+FFFD, like a UTF-8 encoder). */
const encode = (text: string): string =>
  [...Buffer.from(text, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

const junkText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '..',
    '%',
    '%zz',
    '%00',
    '%C0%AF',
    '%2e%2e',
    '\u0000',
    'null',
    '-1',
    '1e999',
    'NaN',
  ),
  fc.integer().map(String),
  fc.string({ minLength: 300, maxLength: 3000 }),
);

const idSegment = fc.oneof(
  fc.constant(() => webhookId),
  fc.constant(() => eventId),
  fc.constant(() => deliveryId),
  fc.uuid().map((id) => () => id),
  fc.constantFrom('fuzz', 'ops', 'other-tenant').map((id) => () => id),
  junkText.map((text) => () => text),
);

/** A path: a route with its `{…}` filled, sometimes with extra or missing segments. */
const pathArb = fc
  .tuple(
    fc.constantFrom(...ROUTES),
    idSegment,
    fc.constantFrom('as-is', 'encoded', 'trailing-slash', 'extra-segment', 'double-slash'),
  )
  .map(([[method, template], id, shape]) => {
    // Revoking the tenants whose tokens the fuzz uses would turn the rest of the run into 401s.
    const raw = template.endsWith('/revoke-tokens') ? 'other-tenant' : id();
    const value = shape === 'as-is' ? raw : encode(raw);
    let path = template.replace(/\{[^}]+\}/g, value);
    if (shape === 'trailing-slash') path += '/';
    if (shape === 'extra-segment') path += `/${encode(raw)}`;
    if (shape === 'double-slash') path = path.replace('/', '//');
    // Characters Node refuses to put in a request line are sent percent-encoded.
    path = path.replace(/[^\x21-\x7e]/gu, (c) => encode(c));
    return { method, path };
  });

const queryArb = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('limit', 'offset', 'webhook_id', 'tenant_id', 'since', 'type', 'status', 'enabled'),
        fc.string({ maxLength: 10 }),
      ),
      junkText,
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs.length === 0
      ? ''
      : '?' +
        pairs
          .map(([k, v]) => `${encode(k)}=${encode(v)}`)
          .join('&')
          .replace(/%25/g, () => (Math.random() < 0.1 ? '%' : '%25')),
  );

// Mostly valid tokens, so that most requests get past authentication to the routes themselves.
const tokenArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant(() => tenantToken) },
  { weight: 3, arbitrary: fc.constant(() => adminToken) },
  { weight: 1, arbitrary: fc.constant(() => undefined) },
  { weight: 1, arbitrary: junkText.map((t) => () => t) },
);
const schemeArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant('Bearer') },
  { weight: 1, arbitrary: fc.constantFrom('bearer', 'Basic', 'Token', '') },
);

const contentTypeArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'application/merge-patch+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
    'application/',
    '*/*',
  ),
  fc.string({ maxLength: 30 }),
);

const validBodies = [
  { url: 'https://example.com/h', event_types: ['a.b'] },
  { type: 'fuzz.event', payload: { n: 1 } },
  { enabled: false },
  { secret: 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=' },
  { max_events_per_sec: 10, max_concurrent_deliveries: 5, max_dlq_size: 10 },
  { webhook_id: '00000000-0000-0000-0000-000000000000', since: '2020-01-01T00:00:00Z' },
];

/** A valid body with one field replaced by anything, or a new field added. */
const mutatedBody = fc
  .tuple(fc.constantFrom(...validBodies), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }))
  .map(([body, key, value]) => {
    const keys = Object.keys(body);
    const target = keys.length > 0 && key.length % 2 === 0 ? keys[key.length % keys.length]! : key;
    return JSON.stringify({ ...body, [target]: value });
  });

/** A valid body with one field set to a number JSON can write but JavaScript cannot hold. */
const hugeNumberBody = fc
  .tuple(
    fc.constantFrom(...validBodies),
    fc.nat(),
    fc.constantFrom('1e999', '-1e999', '1' + '0'.repeat(400), '1e308', '-0', '1E+400'),
  )
  .map(([body, pick, raw]) => {
    const keys = [...Object.keys(body), 'payload'];
    const key = keys[pick % keys.length]!;
    return JSON.stringify({ ...body, [key]: '__N__' }).replace('"__N__"', raw);
  });

const bodyArb = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  mutatedBody,
  hugeNumberBody,
  fc.constantFrom(...validBodies).map((b) => JSON.stringify(b)),
  junkText,
  fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1, max: 100_000 }).map((depth) => '{"a":'.repeat(depth)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(JSON.stringify({ type: 'big', payload: { x: 'x'.repeat(300 * 1024) } })),
);

const headerArb = fc.record(
  {
    'idempotency-key': junkText.map((t) => t.replace(/[^\x20-\x7e]/g, '')),
    'x-request-id': junkText.map((t) => t.replace(/[^\x20-\x7e]/g, '')),
    accept: fc.constantFrom('*/*', 'text/html', 'application/xml', ''),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0', ''),
  },
  { requiredKeys: [] },
);

describe('generated requests against every route', () => {
  it(`${RUNS} requests: no 500, every error in the error shape`, async () => {
    const statuses = new Map<number, number>();
    let skipped = 0;
    await fc.assert(
      fc.asyncProperty(
        pathArb,
        fc.oneof(
          fc.constant(undefined),
          fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
        ),
        queryArb,
        tokenArb,
        schemeArb,
        contentTypeArb,
        headerArb,
        bodyArb,
        async (target, otherMethod, query, token, scheme, contentType, extra, body) => {
          const method = otherMethod ?? target.method;
          const headers: Record<string, string> = { ...extra };
          const t = token();
          if (t !== undefined) headers.authorization = `${scheme} ${t}`.trim();
          if (contentType) headers['content-type'] = contentType;
          const payload = typeof body === 'string' ? Buffer.from(body) : body;
          let answer: Answer;
          try {
            answer = await send(method, target.path + query, headers, payload);
          } catch (err) {
            // Node's client refuses some header values outright: nothing was sent.
            if ((err as { code?: string }).code?.startsWith('ERR_INVALID')) {
              skipped++;
              return;
            }
            throw err;
          }
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          checkAnswer(method, answer, `${method} ${target.path}${query.slice(0, 200)}`);
        },
      ),
      { numRuns: RUNS },
    );
    report('API fuzz', {
      requests: RUNS - skipped,
      refused_by_client: skipped,
      statuses: [...statuses]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}x${n}`)
        .join(','),
    });
    expect(statuses.get(500)).toBeUndefined();
  }, 600_000);
});

/** Writes `bytes` on a fresh connection; the answer, or undefined when the server just closed it. */
function rawExchange(bytes: Buffer): Promise<{ head: string; body: string } | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer in 15 s')));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // One answer is enough: stop once its body is complete.
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end));
      if (length && text.length >= end + 4 + Number(length[1])) socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text === '') return resolve(undefined);
      const end = text.indexOf('\r\n\r\n');
      resolve({ head: text.slice(0, end < 0 ? text.length : end), body: end < 0 ? '' : text.slice(end + 4) });
    });
    socket.end(bytes);
  });
}

const rawRequestArb = fc.oneof(
  // A request line or header the HTTP parser refuses.
  fc
    .tuple(junkText, junkText, junkText)
    .map(([a, b, c]) => Buffer.from(`${a} /${b} HTTP/1.1\r\nHost: x\r\n${c}: ${a}\r\n\r\n`)),
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc
    .constantFrom(
      'GET / HTTP/9.9\r\n\r\n',
      'GET /health\r\n\r\n',
      'POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}',
      'POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n',
      'POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GET /webhooks HTTP/1.1\r\nHost: x\r\nX: ' + 'y'.repeat(20_000) + '\r\n\r\n',
      'GET /webhooks HTTP/1.1\r\nHost: x\r\n' + 'X-A: b\r\n'.repeat(3000) + '\r\n',
      'GET /we\u0000bhooks HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET http://evil.example/webhooks HTTP/1.1\r\nHost: evil.example\r\n\r\n',
      'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u00ff\u00fe\r\n\r\n',
    )
    .map((text) => Buffer.from(text, 'latin1')),
  // A well-formed request line with a body that does not match its declared length.
  fc
    .tuple(fc.constantFrom('/events', '/webhooks', `/quotas/fuzz`), fc.nat({ max: 100 }), junkText)
    .map(([path, declared, body]) =>
      Buffer.from(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\nConnection: close\r\n\r\n${body}`,
      ),
    ),
);

describe('raw bytes on the socket', () => {
  it(`${RAW_RUNS} malformed requests: an error-shaped answer or a closed connection, never a 500`, async () => {
    let closedWithoutAnswer = 0;
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(rawRequestArb, async (bytes) => {
        const answer = await rawExchange(bytes);
        if (answer === undefined) {
          closedWithoutAnswer++;
          return;
        }
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer.head)?.[1] ?? 'unparsed';
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        const what = JSON.stringify(bytes.toString('latin1').slice(0, 120));
        expect(status, what).toMatch(/^\d{3}$/);
        expect(status, what).not.toBe('500');
        if (Number(status) >= 400) {
          const parsed = JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } };
          expect(typeof parsed.error?.code, what).toBe('string');
          expect(typeof parsed.error?.message, what).toBe('string');
        }
      }),
      { numRuns: RAW_RUNS },
    );
    report('raw socket fuzz', {
      requests: RAW_RUNS,
      closed_without_answer: closedWithoutAnswer,
      statuses: [...statuses].map(([s, n]) => `${s}x${n}`).join(','),
    });
  }, 600_000);
});

it('after the fuzzing the service still works normally (it may have deleted the seeded webhook)', async () => {
  const token = await signToken(TEST_JWT_SECRET, { tenantId: 'after-fuzz' });
  const created = await svc.call('POST', '/webhooks', {
    token,
    body: { url: 'https://example.com/after', event_types: ['*'] },
  });
  expect(created.status).toBe(201);
  expect((await svc.call('GET', `/webhooks/${created.body.id}`, { token })).status).toBe(200);
  const event = await svc.call('POST', '/events', { token, body: { type: 'after.fuzz', payload: {} } });
  report('API after fuzzing', {
    webhook_created: created.status,
    event_accepted: event.status,
    webhooks_queued: event.body.webhooks_queued,
  });
  expect(event.status).toBe(202);
  expect(event.body.webhooks_queued).toBe(1);
});
