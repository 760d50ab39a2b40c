/**
 * The real service, in this process, on a cloned database, listening on a free port; with
 * helpers to mint tokens and call it over HTTP.
 */
import { parseConfig } from '../../src/config.js';
import { signToken } from '../../src/http/auth.js';
import { startService, type Service } from '../../src/service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createSecretBox, DEFAULT_KEY_ID, type SecretBox } from '../../src/secrets/secret-box.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef';
/** The SECRETS_KEY of test services: 32 bytes in base64. */
export const TEST_SECRETS_KEY = Buffer.alloc(32, 'hookrelay test secrets key').toString('base64');

/** A keyring holding TEST_SECRETS_KEY, as test services have it. */
export function testSecretBox(): SecretBox {
  return createSecretBox([{ id: DEFAULT_KEY_ID, key: Buffer.from(TEST_SECRETS_KEY, 'base64') }]);
}

export interface TestService {
  service: Service;
  database: TestDatabase;
  url: string;
  token(tenantId: string, options?: { admin?: boolean }): Promise<string>;
  /** fetch against the service; `body` is sent as JSON. */
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * The service on a fresh database, or on `options.database` (left in place by `stop`, for a
 * test that starts the service again on the same data).
 */
export async function startTestService(
  env: Record<string, string> = {},
  options: { database?: TestDatabase } = {},
): Promise<TestService> {
  const database = options.database ?? (await createTestDatabase());
  const config = parseConfig({
    NODE_ENV: 'test',
    PORT: '0',
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_JWT_SECRET,
    SECRETS_KEY: TEST_SECRETS_KEY,
    LOG_LEVEL: 'error',
    SSRF_ALLOWLIST: '127.0.0.1/32',
    RETRY_SCHEDULE: '0.05,0.1',
    NUM_WORKERS: '4',
    DATABASE_POOL_SIZE: '10',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...env,
  });
  const service = await startService(config, { logger: createLogger(config.logLevel) });
  const url = service.url ?? '';
  return {
    service,
    database,
    url,
    token: (tenantId, options = {}) =>
      signToken(TEST_JWT_SECRET, { tenantId, role: options.admin ? 'admin' : 'tenant' }),
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      }
      const response = await fetch(url + path, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
    async stop() {
      await service.stop();
      if (!options.database) await database.drop();
    },
  };
}
