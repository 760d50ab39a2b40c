import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { DEFAULT_KEY_ID, KEY_ID_PATTERN, parseKey, type SecretsKey } from './secrets/secret-box.js';

/**
 * Everything the service reads from its environment, parsed and checked once at start-up.
 * A bad value stops start-up with one line that names the variable (see `ConfigError`).
 */
export interface Config {
  nodeEnv: string;
  isProduction: boolean;
  port: number;
  /** Unset means: start an embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  /**
   * HS256 keys for API tokens (JWT_SECRETS=new,old, or JWT_SECRET alone): the first signs, any
   * verifies. Empty in development means: generate one and keep it in `dataDir`.
   */
  jwtSecrets: readonly string[];
  /**
   * Keys that encrypt webhook secrets at rest (SECRETS_KEYS=<id>:<key>,…, or SECRETS_KEY alone
   * as id `default`): the first encrypts, all decrypt. Empty in development means: generate one
   * and keep it in `dataDir`.
   */
  secretsKeys: readonly SecretsKey[];
  /** Webhook URLs must be https:// at registration and update (WEBHOOK_HTTPS_ONLY). */
  webhookHttpsOnly: boolean;
  logLevel: string;
  role: 'all' | 'api' | 'worker';
  /** Delivery jobs (batches) one process works on at once (NUM_WORKERS). */
  numWorkers: number;
  /** Outbound requests one process keeps open at once, over all its jobs (MAX_IN_FLIGHT). */
  maxInFlight: number;
  /** Seconds to wait before retry 1, 2, 3 …; its length is the number of retries. */
  retryScheduleSeconds: readonly number[];
  deliveryTimeoutMs: number;
  maxPayloadBytes: number;
  /** CIDRs exempt from the private-address block, already parsed. */
  ssrfAllowlist: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];
  /** Port of a listener serving only GET /metrics (how a `ROLE=worker` process is scraped); undefined = none. */
  metricsPort: number | undefined;
  /** How long a graceful stop waits for in-flight work before giving up. */
  shutdownTimeoutMs: number;
  /** How many connections the service's own pool may open. */
  databasePoolSize: number;
  /** A worker whose heartbeat is older than this is taken for dead and its jobs are released. */
  workerStaleAfterMs: number;
  /** graphile-worker's local queue (jobs locked in batches); 0 = off, the fair default. */
  workerLocalQueueSize: number;
  /** A webhook failing without a success for this long is disabled; 0 = never (WEBHOOK_AUTO_DISABLE_AFTER). */
  webhookAutoDisableAfterMs: number;
  /** How often each worker process looks for such webhooks (WEBHOOK_AUTO_DISABLE_SWEEP_MS). */
  webhookAutoDisableSweepMs: number;
  /** Days finished events and old attempts are kept before the retention sweep removes them; 0 = forever. */
  retentionDays: number;
  /** How often each worker process runs the retention sweep (RETENTION_SWEEP_MS). */
  retentionSweepMs: number;
  /**
   * Who may frame the portal's pages (PORTAL_FRAME_ANCESTORS, space-separated CSP sources);
   * empty = nobody (`frame-ancestors 'none'`, `X-Frame-Options: DENY`).
   */
  portalFrameAncestors: readonly string[];
}

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function retrySchedule(env: Env): number[] {
  const raw = env.RETRY_SCHEDULE;
  if (raw === undefined || raw.trim() === '') return [1, 4, 16, 64, 256];
  return raw.split(',').map((part) => {
    const value = Number(part.trim());
    if (part.trim() === '' || !Number.isFinite(value) || value < 0 || value > 7 * 24 * 3600) {
      throw new ConfigError(
        'RETRY_SCHEDULE',
        `must be comma-separated seconds between 0 and 604800, got "${raw}"`,
      );
    }
    return value;
  });
}

function cidrList(env: Env): [ipaddr.IPv4 | ipaddr.IPv6, number][] {
  const raw = env.SSRF_ALLOWLIST;
  if (raw === undefined || raw.trim() === '') return [];
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      try {
        return part.includes('/')
          ? ipaddr.parseCIDR(part)
          : ipaddr.parseCIDR(`${part}/${ipaddr.parse(part).kind() === 'ipv4' ? 32 : 128}`);
      } catch {
        throw new ConfigError('SSRF_ALLOWLIST', `must be comma-separated CIDRs, "${part}" is not one`);
      }
    });
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `5d`, `12h`, `30m`, `90s`, `250ms`, or plain seconds (`432000`). */
function duration(env: Env, name: string, fallbackMs: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw);
  const value = match ? Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 's']! : NaN;
  if (!Number.isFinite(value) || value > 365 * 86_400_000) {
    throw new ConfigError(
      name,
      `must be a duration like 5d, 12h, 30m, 90s or seconds, up to 365d, got "${raw}"`,
    );
  }
  return Math.round(value);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `must be true or false, got "${env[name]}"`);
}

/**
 * A setting given either alone (`JWT_SECRET`) or as a comma-separated list (`JWT_SECRETS`), not
 * both. The single value is taken as written unless `trim`.
 */
function singleOrList(
  env: Env,
  singleName: string,
  listName: string,
  options: { trim: boolean },
): { single?: string; list?: string } {
  const single = (options.trim ? env[singleName]?.trim() : env[singleName]) || undefined;
  const list = env[listName]?.trim() || undefined;
  if (single !== undefined && list !== undefined)
    throw new ConfigError(listName, `cannot be set together with ${singleName}; set one of them`);
  return { single, list };
}

function jwtSecrets(env: Env): string[] {
  // A signing key is used exactly as written.
  const { single, list } = singleOrList(env, 'JWT_SECRET', 'JWT_SECRETS', { trim: false });
  const name = list !== undefined ? 'JWT_SECRETS' : 'JWT_SECRET';
  const secrets = list !== undefined ? list.split(',').map((part) => part.trim()) : single ? [single] : [];
  if (secrets.some((secret) => secret.length < 16)) {
    throw new ConfigError(
      name,
      list !== undefined
        ? 'must be comma-separated keys of at least 16 characters each'
        : 'must be at least 16 characters',
    );
  }
  return secrets;
}

const KEY_HINT = '32 random bytes in base64 (openssl rand -base64 32)';

function secretsKeys(env: Env): SecretsKey[] {
  const { single, list } = singleOrList(env, 'SECRETS_KEY', 'SECRETS_KEYS', { trim: true });
  if (single !== undefined) {
    const key = parseKey(single);
    // The value itself is never repeated in the message.
    if (!key) throw new ConfigError('SECRETS_KEY', `must be ${KEY_HINT}`);
    return [{ id: DEFAULT_KEY_ID, key }];
  }
  if (list === undefined) return [];
  const keys = list.split(',').map((entry) => {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon).trim();
    const key = colon > 0 ? parseKey(entry.slice(colon + 1)) : undefined;
    if (!KEY_ID_PATTERN.test(id) || !key) {
      throw new ConfigError(
        'SECRETS_KEYS',
        `must be comma-separated <id>:<key> entries (id: letters, digits, _ . -, up to 32; key: ${KEY_HINT})`,
      );
    }
    return { id, key };
  });
  const ids = keys.map((k) => k.id);
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
  if (repeated !== undefined) throw new ConfigError('SECRETS_KEYS', `names key id "${repeated}" twice`);
  return keys;
}

/** CSP sources: `'self'`, a scheme-and-host origin (wildcard subdomain allowed), nothing that could end the directive. */
const FRAME_SOURCE = /^(?:'self'|https?:\/\/(?:\*\.)?[A-Za-z0-9.-]+(?::\d{1,5})?)$/;

function frameAncestors(env: Env): string[] {
  const sources = (env.PORTAL_FRAME_ANCESTORS ?? '').split(/[\s,]+/).filter((s) => s !== '');
  for (const source of sources) {
    if (!FRAME_SOURCE.test(source)) {
      throw new ConfigError(
        'PORTAL_FRAME_ANCESTORS',
        `must be space-separated origins (https://app.example.com) or 'self', "${source}" is not one`,
      );
    }
  }
  return sources;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;

export function parseConfig(env: Env = process.env): Readonly<Config> {
  const nodeEnv = env.NODE_ENV ?? 'development';
  const isProduction = nodeEnv === 'production';
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (isProduction && !databaseUrl)
    throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production');
  const jwtKeys = jwtSecrets(env);
  if (isProduction && jwtKeys.length === 0)
    throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production (or JWT_SECRETS)');
  const secretKeys = secretsKeys(env);
  if (isProduction && secretKeys.length === 0)
    throw new ConfigError('SECRETS_KEY', 'is required when NODE_ENV=production (or SECRETS_KEYS)');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// connection string');
  }
  const metricsPortRaw = env.METRICS_PORT;
  const config: Config = {
    nodeEnv,
    isProduction,
    port: integer(env, 'PORT', 3000, 0, 65535),
    databaseUrl,
    dataDir: path.resolve(env.DATA_DIR?.trim() || './.data'),
    jwtSecrets: Object.freeze(jwtKeys),
    secretsKeys: Object.freeze(secretKeys),
    webhookHttpsOnly: boolean(env, 'WEBHOOK_HTTPS_ONLY', isProduction),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    role: oneOf(env, 'ROLE', 'all', ['all', 'api', 'worker'] as const),
    numWorkers: integer(env, 'NUM_WORKERS', 10, 0, 1000),
    maxInFlight: integer(env, 'MAX_IN_FLIGHT', 1000, 1, 100_000),
    retryScheduleSeconds: Object.freeze(retrySchedule(env)),
    deliveryTimeoutMs: integer(env, 'DELIVERY_TIMEOUT_MS', 10000, 1, 30000),
    maxPayloadBytes: integer(env, 'MAX_PAYLOAD_BYTES', 262144, 1024, 16 * 1024 * 1024),
    ssrfAllowlist: Object.freeze(cidrList(env)),
    metricsPort: metricsPortRaw ? integer(env, 'METRICS_PORT', 0, 0, 65535) : undefined,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 15000, 0, 600000),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 20, 2, 500),
    workerStaleAfterMs: integer(env, 'WORKER_STALE_AFTER_MS', 30000, 1000, 4 * 3600 * 1000),
    workerLocalQueueSize: integer(env, 'WORKER_LOCAL_QUEUE_SIZE', 0, 0, 10000),
    webhookAutoDisableAfterMs: duration(env, 'WEBHOOK_AUTO_DISABLE_AFTER', 5 * 86_400_000),
    webhookAutoDisableSweepMs: integer(env, 'WEBHOOK_AUTO_DISABLE_SWEEP_MS', 60_000, 50, 24 * 3600 * 1000),
    retentionDays: integer(env, 'RETENTION_DAYS', 30, 0, 3650),
    retentionSweepMs: integer(env, 'RETENTION_SWEEP_MS', 60_000, 50, 24 * 3600 * 1000),
    portalFrameAncestors: Object.freeze(frameAncestors(env)),
  };
  return Object.freeze(config);
}
