/**
 * The log output of a real service (src/main.ts in a child process, NODE_ENV=production, stdout
 * and stderr read whole): JSON lines with level, msg and time; one line per API request with its
 * request id; one line per delivery attempt with delivery, webhook, tenant, attempt, status or
 * error and duration; and nowhere a secret, signing key, signature, token, payload field or the
 * webhook URL's query. LOG_LEVEL decides which lines appear.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort, spawnService, stopService, waitFor, type ServiceProcess } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { TEST_SECRETS_KEY } from '../helpers/service.js';

const JWT_SECRET = `logs-test-${randomBytes(12).toString('hex')}`;

type LogLine = Record<string, unknown>;

interface Running {
  process: ServiceProcess;
  base: string;
}

/**
 * Starts the service; waits for /health to answer (the port is chosen here, since at LOG_LEVEL
 * warn there is no "listening" line to read it from).
 */
async function start(database: TestDatabase, env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawnService({
    NODE_ENV: 'production',
    DATABASE_URL: database.url,
    JWT_SECRET,
    SECRETS_KEY: TEST_SECRETS_KEY,
    // The receivers here are plain http on 127.0.0.1.
    WEBHOOK_HTTPS_ONLY: 'false',
    SSRF_ALLOWLIST: '127.0.0.1/32',
    RETRY_SCHEDULE: '0.05',
    PORT: String(port),
    ...env,
  });
  const base = `http://127.0.0.1:${port}`;
  let exited = false;
  void child.exited.then(() => (exited = true));
  await waitFor(
    async () => {
      if (exited) throw new Error(`service exited:\n${child.output()}`);
      return (await fetch(`${base}/health`)).status === 200 ? true : undefined;
    },
    30_000,
    'the service to answer /health',
  );
  return { process: child, base };
}

async function stop(running: Running | undefined): Promise<void> {
  if (running) await stopService(running.process);
}

/** Every line of output; each must be a JSON object. */
function jsonLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
}

async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: any; requestId: string }> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(base + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: text ? JSON.parse(text) : undefined,
    requestId: response.headers.get('x-request-id') ?? '',
  };
}

describe('log output of a delivery', () => {
  let database: TestDatabase;
  let receiver: Receiver;
  let running: Running | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await stop(running);
    await receiver?.close();
    await database?.drop();
  });

  it('has the request and attempt lines, and no secret, signature, token or payload', async () => {
    running = await start(database, { LOG_LEVEL: 'info' });
    // First attempt 500, the retry 200.
    receiver.respond((index) => ({ kind: 'status', status: index === 0 ? 500 : 200 }));

    const token = await signToken(JWT_SECRET, { tenantId: 'log-tenant', role: 'tenant' });
    const forgedToken = await signToken('some-other-secret-0123456789', {
      tenantId: 'log-tenant',
      role: 'admin',
    });
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const urlToken = `url-secret-${randomBytes(6).toString('hex')}`;
    const payloadKey = `field_${randomBytes(4).toString('hex')}`;
    const payloadValue = `value-${randomBytes(8).toString('hex')}`;

    const made: { requestId: string; method: string; path: string; status: number }[] = [];
    const tracked = async (method: string, path: string, options: { token?: string; body?: unknown }) => {
      const answer = await call(running!.base, method, path, options);
      made.push({ requestId: answer.requestId, method, path: path.split('?')[0]!, status: answer.status });
      return answer;
    };

    const hook = await tracked('POST', '/webhooks', {
      token,
      body: { url: `${receiver.url}/hook?token=${urlToken}`, event_types: ['*'], secret },
    });
    expect(hook.status).toBe(201);
    const rotated = await tracked('POST', `/webhooks/${hook.body.id}/rotate-secret`, { token });
    expect(rotated.status).toBe(200);
    const event = await tracked('POST', '/events', {
      token,
      body: { type: 'card.charged', payload: { [payloadKey]: payloadValue } },
    });
    expect(event.status).toBe(202);
    const refused = await tracked('GET', '/webhooks', { token: forgedToken });
    expect(refused.status).toBe(401);
    const deliveryId = event.body.delivery_ids[0] as string;

    const attemptLines = () =>
      jsonLines(running!.process.output()).filter(
        (l) => l.msg === 'delivery attempt' && l.delivery_id === deliveryId,
      );
    await waitFor(() => (attemptLines().length === 2 ? true : undefined), 15_000, 'two attempt lines');
    await stop(running);
    const output = running.process.output();
    const lines = jsonLines(output);

    for (const line of lines) {
      expect(typeof line.level).toBe('string');
      expect(typeof line.msg).toBe('string');
      expect(new Date(line.time as string).toISOString()).toBe(line.time);
      // Tracing is off: no ids from it.
      expect(line).not.toHaveProperty('trace_id');
    }
    expect(lines.some((l) => l.level === 'debug')).toBe(false);

    // One line per request, with its request id.
    for (const request of made) {
      const matching = lines.filter((l) => l.request_id === request.requestId && l.msg === 'request');
      expect(matching, `${request.method} ${request.path}`).toHaveLength(1);
      expect(matching[0]).toMatchObject({
        method: request.method,
        path: request.path,
        status: request.status,
      });
      expect(typeof matching[0]!.duration_ms).toBe('number');
    }

    // One line per attempt: who, which attempt, what came back, how long.
    const [first, second] = attemptLines();
    const who = { delivery_id: deliveryId, webhook_id: hook.body.id, tenant_id: 'log-tenant' };
    expect(first).toMatchObject({
      ...who,
      attempt: 1,
      status_code: 500,
      error: 'HTTP 500: Internal Server Error',
    });
    expect(second).toMatchObject({ ...who, attempt: 2, status_code: 200, error: null });
    for (const line of [first!, second!]) expect(typeof line.duration_ms).toBe('number');

    // Nothing that would let a reader of the logs sign, authenticate, or read the event.
    const signatures = receiver.requests.flatMap((r) =>
      String(r.headers['webhook-signature'])
        .split(' ')
        .flatMap((s) => [s, s.replace(/^v1,/, '')]),
    );
    expect(signatures.length).toBeGreaterThanOrEqual(2);
    const forbidden = [
      secret,
      secret.slice('whsec_'.length),
      Buffer.from(secret.slice('whsec_'.length), 'base64').toString('hex'),
      rotated.body.secret as string,
      (rotated.body.secret as string).slice('whsec_'.length),
      ...signatures,
      token,
      forgedToken,
      JWT_SECRET,
      urlToken,
      payloadKey,
      payloadValue,
      'whsec_',
      'Bearer',
      'eyJ', // the start of any JWT
    ];
    for (const value of forbidden) expect(output, `output holds ${value.slice(0, 12)}…`).not.toContain(value);
  });
});

describe('LOG_LEVEL', () => {
  let database: TestDatabase;
  const children: Running[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const child of children) await stop(child);
    await database?.drop();
  });

  it('debug shows debug lines; warn hides the info lines', async () => {
    const [debug, warn] = await Promise.all([
      start(database, { LOG_LEVEL: 'debug' }),
      start(database, { LOG_LEVEL: 'warn' }),
    ]);
    children.push(debug, warn);
    const token = await signToken(JWT_SECRET, { tenantId: 'level-tenant', role: 'tenant' });
    for (const running of [debug, warn]) {
      expect((await call(running.base, 'GET', '/webhooks', { token })).status).toBe(200);
    }
    // graphile-worker's workers say "Spawned" at debug level when they start.
    await waitFor(
      () => (jsonLines(debug.process.output()).some((l) => l.level === 'debug') ? true : undefined),
      10_000,
      'a debug line',
    );
    await Promise.all([stop(debug), stop(warn)]);

    const debugLines = jsonLines(debug.process.output());
    expect(debugLines.some((l) => l.msg === 'request' && l.level === 'info')).toBe(true);
    const warnLines = jsonLines(warn.process.output());
    expect(warnLines.filter((l) => l.level === 'info' || l.level === 'debug')).toEqual([]);
  });
});
