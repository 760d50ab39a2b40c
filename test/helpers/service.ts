/**
 * The real service, in this process, on a cloned database, listening on a free port; with
 * helpers to mint tokens and call it over HTTP.
 */
import { parseConfig } from '../../src/config.js';
import { signToken } from '../../src/http/auth.js';
import { startService, type Service } from '../../src/service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef';

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

export async function startTestService(env: Record<string, string> = {}): Promise<TestService> {
  const database = await createTestDatabase();
  const config = parseConfig({
    NODE_ENV: 'test',
    PORT: '0',
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_JWT_SECRET,
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
      await database.drop();
    },
  };
}
