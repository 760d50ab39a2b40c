import type dns from 'node:dns';
import type { LookupAddress } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import {
  checkLiteralDestination,
  createGuardedLookup,
  DestinationBlockedError,
} from '../../src/delivery/ssrf-guard.js';

/** A resolver that answers `addresses` for any name. */
function fakeResolve(addresses: LookupAddress[]): typeof dns.lookup {
  return ((_host: string, _options: unknown, callback: (err: Error | null, a: LookupAddress[]) => void) =>
    process.nextTick(() => callback(null, addresses))) as unknown as typeof dns.lookup;
}

function lookupAll(lookup: ReturnType<typeof createGuardedLookup>, all: boolean) {
  return new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family: number | undefined }>(
    (resolve) => lookup('example.test', { all }, (err, address, family) => resolve({ err, address, family })),
  );
}

describe('SSRF guard', () => {
  it('passes public addresses, in both callback shapes', async () => {
    const resolve = fakeResolve([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    const lookup = createGuardedLookup([], undefined, resolve);
    const all = await lookupAll(lookup, true);
    expect(all.err).toBeNull();
    expect(all.address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    const one = await lookupAll(lookup, false);
    expect(one).toEqual({ err: null, address: '93.184.216.34', family: 4 });
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['::1', 'loopback'],
    ['fd00::1', 'unique-local'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
  ])('refuses a name resolving to %s (%s)', async (address, words) => {
    const blocked: string[] = [];
    const lookup = createGuardedLookup(
      [],
      (reason) => blocked.push(reason),
      fakeResolve([
        { address: '93.184.216.34', family: 4 },
        { address, family: address.includes(':') ? 6 : 4 },
      ]),
    );
    for (const all of [true, false]) {
      const result = await lookupAll(lookup, all);
      expect(result.err).toBeInstanceOf(DestinationBlockedError);
      expect(result.err!.message).toContain(words);
      expect(result.err!.code).toBe('ERR_DESTINATION_BLOCKED');
    }
    expect(blocked).toHaveLength(2);
  });

  it('lets an allowlisted range through', async () => {
    const lookup = createGuardedLookup(
      [ipaddr.parseCIDR('127.0.0.0/8')],
      undefined,
      fakeResolve([{ address: '127.0.0.1', family: 4 }]),
    );
    expect((await lookupAll(lookup, true)).err).toBeNull();
  });

  it('passes DNS errors on unchanged', async () => {
    const lookup = createGuardedLookup([]);
    const result = await lookupAll(
      (host, options, callback) => lookup(`${host}.invalid`, options, callback),
      true,
    );
    expect(result.err?.code).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });

  it('checks literal-IP URLs, in every spelling the URL parser accepts', () => {
    for (const url of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://[::1]/',
      'http://[::ffff:169.254.169.254]/',
      'http://10.0.0.1:8080/x',
    ]) {
      expect(checkLiteralDestination(new URL(url), []), url).toMatch(/ is a.* address$/);
    }
    expect(checkLiteralDestination(new URL('http://93.184.216.34/'), [])).toBeUndefined();
    expect(checkLiteralDestination(new URL('http://example.com/'), [])).toBeUndefined();
    expect(
      checkLiteralDestination(new URL('http://127.0.0.1/'), [ipaddr.parseCIDR('127.0.0.1/32')]),
    ).toBeUndefined();
  });
});
