/**
 * A sweep on a timer that keeps failing (the database is away) logs its first failure and one
 * line when it succeeds again, not a line per tick; a minute on, it reminds.
 */
import { PassThrough } from 'node:stream';
import { expect, it, vi } from 'vitest';
import { FAILURE_REMINDER_MS, startPeriodicSweep } from '../../src/db/periodic-sweep.js';
import { createLogger } from '../../src/observability/logger.js';

function capturedLogger() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
  });
  return { logger: createLogger('info', { stream }), lines };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

it('twenty failed runs in a row log one failure, then one recovery naming how many failed', async () => {
  const { logger, lines } = capturedLogger();
  let runs = 0;
  const sweep = startPeriodicSweep({
    name: 'test sweep',
    everyMs: 5,
    logger,
    run: () => (++runs <= 20 ? Promise.reject(new Error('connection refused')) : Promise.resolve(runs)),
  });
  try {
    await until(() => lines.some((line) => line.msg === 'test sweep recovered'));
  } finally {
    await sweep.stop();
  }
  expect(lines.map(({ level, msg, err, failed_runs }) => ({ level, msg, err, failed_runs }))).toEqual([
    { level: 'error', msg: 'test sweep failed', err: 'connection refused', failed_runs: 1 },
    { level: 'info', msg: 'test sweep recovered', err: undefined, failed_runs: 20 },
  ]);
});

it('a sweep that goes on failing is logged again once FAILURE_REMINDER_MS has passed', async () => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
  const { logger, lines } = capturedLogger();
  const sweep = startPeriodicSweep({
    name: 'test sweep',
    everyMs: 1000,
    logger,
    run: () => Promise.reject(new Error('connection refused')),
  });
  try {
    await vi.advanceTimersByTimeAsync(FAILURE_REMINDER_MS);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => line.failed_runs)).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => line.failed_runs)).toEqual([1, 61]);
  } finally {
    await sweep.stop();
    vi.useRealTimers();
  }
});
