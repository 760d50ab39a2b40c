/**
 * parseConfig: the retention variables, the keys (SECRETS_KEY(S), JWT_SECRET(S)) and WEBHOOK_HTTPS_ONLY.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.js';

describe('RETENTION_DAYS and RETENTION_SWEEP_MS', () => {
  it('default to 30 days and a sweep a minute', () => {
    const config = parseConfig({});
    expect(config.retentionDays).toBe(30);
    expect(config.retentionSweepMs).toBe(60_000);
  });

  it('take whole numbers: 0 keeps everything, 50 ms is the shortest interval', () => {
    expect(parseConfig({ RETENTION_DAYS: '0' }).retentionDays).toBe(0);
    expect(parseConfig({ RETENTION_DAYS: ' 90 ' }).retentionDays).toBe(90);
    expect(parseConfig({ RETENTION_SWEEP_MS: '50' }).retentionSweepMs).toBe(50);
  });

  it.each([
    ['RETENTION_DAYS', '-1'],
    ['RETENTION_DAYS', '1.5'],
    ['RETENTION_DAYS', '30d'],
    ['RETENTION_DAYS', '3651'],
    ['RETENTION_SWEEP_MS', '49'],
    ['RETENTION_SWEEP_MS', 'soon'],
    ['RETENTION_SWEEP_MS', '86400001'],
  ])('%s=%s stops start-up naming the variable', (name, value) => {
    expect(() => parseConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => parseConfig({ [name]: value })).toThrow(`Invalid configuration: ${name} `);
  });
});

const key = (fill: string) => Buffer.alloc(32, fill).toString('base64');

describe('SECRETS_KEY and SECRETS_KEYS', () => {
  it('SECRETS_KEY is the key `default`; SECRETS_KEYS lists keys, the first encrypting', () => {
    expect(parseConfig({ SECRETS_KEY: key('a') }).secretsKeys).toEqual([
      { id: 'default', key: Buffer.alloc(32, 'a') },
    ]);
    const ring = parseConfig({ SECRETS_KEYS: `2025b:${key('b')}, default:${key('a')}` }).secretsKeys;
    expect(ring.map((k) => k.id)).toEqual(['2025b', 'default']);
    expect(parseConfig({}).secretsKeys).toEqual([]);
  });

  it.each([
    [{ SECRETS_KEY: 'c2hvcnQ=' }, 'SECRETS_KEY'],
    [{ SECRETS_KEY: key('a'), SECRETS_KEYS: `k:${key('b')}` }, 'SECRETS_KEYS'],
    [{ SECRETS_KEYS: key('a') }, 'SECRETS_KEYS'],
    [{ SECRETS_KEYS: `bad id:${key('a')}` }, 'SECRETS_KEYS'],
    [{ SECRETS_KEYS: `k:${key('a')},k:${key('b')}` }, 'SECRETS_KEYS'],
  ])('%j stops start-up naming %s, never repeating the key', (env, name) => {
    expect(() => parseConfig(env)).toThrow(`Invalid configuration: ${name} `);
    try {
      parseConfig(env);
    } catch (err) {
      expect((err as Error).message).not.toContain(key('a'));
    }
  });

  it('is required with NODE_ENV=production, in one line naming it', () => {
    const production = { NODE_ENV: 'production', DATABASE_URL: 'postgres://x/y', JWT_SECRET: 'j'.repeat(32) };
    expect(() => parseConfig(production)).toThrow(
      'Invalid configuration: SECRETS_KEY is required when NODE_ENV=production (or SECRETS_KEYS)',
    );
    expect(parseConfig({ ...production, SECRETS_KEY: key('a') }).secretsKeys).toHaveLength(1);
  });
});

describe('JWT_SECRET and JWT_SECRETS', () => {
  it('JWT_SECRETS=new,old: the first signs, both verify', () => {
    expect(parseConfig({ JWT_SECRETS: 'new-secret-0123456789,old-secret-0123456789' }).jwtSecrets).toEqual([
      'new-secret-0123456789',
      'old-secret-0123456789',
    ]);
    expect(parseConfig({ JWT_SECRET: 'one-secret-0123456789' }).jwtSecrets).toEqual([
      'one-secret-0123456789',
    ]);
  });

  it.each([
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ JWT_SECRETS: 'new-secret-0123456789,short' }, 'JWT_SECRETS'],
    [{ JWT_SECRET: 'one-secret-0123456789', JWT_SECRETS: 'new-secret-0123456789' }, 'JWT_SECRETS'],
    [{ NODE_ENV: 'production', DATABASE_URL: 'postgres://x/y' }, 'JWT_SECRET'],
  ])('%j stops start-up naming %s', (env, name) => {
    expect(() => parseConfig(env)).toThrow(`Invalid configuration: ${name} `);
  });
});

describe('WEBHOOK_HTTPS_ONLY', () => {
  it('defaults to true in production and false elsewhere; takes true/false', () => {
    const production = {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://x/y',
      JWT_SECRET: 'j'.repeat(32),
      SECRETS_KEY: key('a'),
    };
    expect(parseConfig(production).webhookHttpsOnly).toBe(true);
    expect(parseConfig({ ...production, WEBHOOK_HTTPS_ONLY: 'false' }).webhookHttpsOnly).toBe(false);
    expect(parseConfig({}).webhookHttpsOnly).toBe(false);
    expect(parseConfig({ WEBHOOK_HTTPS_ONLY: 'true' }).webhookHttpsOnly).toBe(true);
    expect(() => parseConfig({ WEBHOOK_HTTPS_ONLY: 'yes' })).toThrow(
      'Invalid configuration: WEBHOOK_HTTPS_ONLY ',
    );
  });
});
