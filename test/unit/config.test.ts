/**
 * parseConfig: the retention variables (RETENTION_DAYS, RETENTION_SWEEP_MS).
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
