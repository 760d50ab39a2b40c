/**
 * SSRF battery. Listeners on 127.0.0.1 and [::1] (one port number for both) count every
 * connection they get. Each blocked spelling is tried three ways: as a literal URL at
 * registration (400), as a webhook row put straight into the database (refused at connect
 * time, dead-lettered), and as the target of a redirect from an allowed receiver (never
 * followed). No connection may reach the listeners.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAddress } from '../../src/delivery/address-policy.js';
import { dlqRows, queueDelivery, waitForDeliveryStatus } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { report, startConnectionCounter } from './support.js';

/** Every blocked spelling we know, by what it is. `PORT` is the listeners' port. */
const LITERALS: Record<string, string[]> = {
  loopback: [
    '127.0.0.1',
    '127.255.255.254',
    '127.1',
    '127.0.1',
    '2130706433',
    '0x7f000001',
    '0x7f.0.0.1',
    '0177.0.0.1',
    '0177.1',
    '017700000001',
    '0x7f.1',
    '[::1]',
    '[0:0:0:0:0:0:0:1]',
    '[0::1]',
  ],
  private: [
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.1',
    '0xa000001',
    '012.0.0.1',
    '167772161',
  ],
  'link-local / metadata': [
    '169.254.169.254',
    '169.254.0.1',
    '0xa9fea9fe',
    '2852039166',
    '[fe80::1]',
    '[fe80::a9fe:a9fe]',
    '[fd00:ec2::254]',
  ],
  cgnat: ['100.64.0.1', '100.127.255.254'],
  multicast: ['224.0.0.1', '239.255.255.250', '[ff02::1]', '[ff05::1:3]'],
  'this network (0/8), broadcast, reserved': [
    '0.0.0.0',
    '0',
    '0x0',
    '0.1.2.3',
    '[::]',
    '255.255.255.255',
    '240.0.0.1',
    '198.18.0.1',
    '192.0.2.1',
    '[2001:db8::1]',
  ],
  'IPv6 unique-local': ['[fc00::1]', '[fd12:3456::1]'],
  'IPv4-mapped and -compatible': [
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
    '[::ffff:10.0.0.1]',
    '[::ffff:169.254.169.254]',
    '[::ffff:0.0.0.0]',
    '[::ffff:0:7f00:1]',
    '[::127.0.0.1]',
  ],
  NAT64: ['[64:ff9b::7f00:1]', '[64:ff9b::a9fe:a9fe]', '[64:ff9b:1::a00:1]'],
  '6to4 and Teredo': [
    '[2002:7f00:1::]',
    '[2002:a9fe:a9fe::]',
    '[2002:a00:1::]',
    '[2001:0:4136:e378:8000:63bf:3fff:fdd2]',
  ],
};
const ALL_LITERALS = Object.values(LITERALS).flat();
/** Names: RFC 6761 loopback names, and this machine's own name. */
const NAMES = ['localhost', 'LOCALHOST', 'localhost.', 'foo.localhost', 'a.b.localhost.', os.hostname()];

let strict: TestService;
let open: TestService;
let v4: Awaited<ReturnType<typeof startConnectionCounter>>;
let v6: Awaited<ReturnType<typeof startConnectionCounter>>;
let port: number;
let redirector: Receiver;
const connections = () => v4.connections() + v6.connections();

/** Listeners on 127.0.0.1:P and [::1]:P for one free P. */
async function listenersOnOnePort() {
  for (;;) {
    const first = await startConnectionCounter('127.0.0.1');
    try {
      const second = await startConnectionCounter('::1', first.port);
      return { first, second };
    } catch {
      await first.close(); // that port is taken on ::1: try another
    }
  }
}

beforeAll(async () => {
  ({ first: v4, second: v6 } = await listenersOnOnePort());
  port = v4.port;
  strict = await startTestService({ SSRF_ALLOWLIST: '', RETRY_SCHEDULE: '0.05' });
  open = await startTestService({ SSRF_ALLOWLIST: '127.0.0.1/32', RETRY_SCHEDULE: '0.05' });
});
afterAll(async () => {
  await redirector?.close();
  await strict?.stop();
  await open?.stop();
  await v4?.close();
  await v6?.close();
});

const urlOf = (host: string) => `http://${host}:${port}/hook`;

describe('as literal URLs at registration', () => {
  it('every spelling is refused with a 400 naming /url, on POST and PATCH', async () => {
    const token = await strict.token('ssrf');
    const existing = await strict.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/hook', event_types: ['*'] },
    });
    expect(existing.status).toBe(201);
    const accepted: string[] = [];
    for (const host of [...ALL_LITERALS, ...NAMES.filter((n) => /localhost\.?$/i.test(n))]) {
      for (const url of [urlOf(host), `https://${host}/x?y=1`]) {
        const res = await strict.call('POST', '/webhooks', { token, body: { url, event_types: ['*'] } });
        if (res.status !== 400) accepted.push(`POST ${url} → ${res.status}`);
        else expect(res.body.error.details).toEqual([{ field: '/url', message: expect.any(String) }]);
      }
      const patch = await strict.call('PATCH', `/webhooks/${existing.body.id}`, {
        token,
        body: { url: urlOf(host) },
      });
      if (patch.status !== 400) accepted.push(`PATCH ${urlOf(host)} → ${patch.status}`);
    }
    report('SSRF registration', {
      spellings: ALL_LITERALS.length + NAMES.filter((n) => /localhost\.?$/i.test(n)).length,
      accepted: accepted.length,
    });
    expect(accepted).toEqual([]);
  });
});

describe('at connect time (rows put straight into the database)', () => {
  it('literal spellings and names that resolve to blocked addresses are never connected to', async () => {
    const db = strict.service.database.db;
    const cases: { host: string; deliveryId: string; expect: RegExp }[] = [];
    for (const host of ALL_LITERALS) {
      const queued = await queueDelivery(db, { url: urlOf(host) });
      cases.push({ host, deliveryId: queued.deliveryId, expect: /^destination blocked: / });
    }
    for (const name of NAMES) {
      const resolved = await dns.lookup(name, { all: true }).catch(() => []);
      const blocked = resolved.length > 0 && resolved.some((a) => !checkAddress(a.address, []).allowed);
      if (resolved.length > 0 && !blocked) continue; // a name that resolves somewhere public: not ours to test
      const queued = await queueDelivery(db, { url: urlOf(name) });
      // A name that does not resolve here fails its lookup: still never a connection.
      cases.push({
        host: name,
        deliveryId: queued.deliveryId,
        expect: blocked ? /^destination blocked: / : /^DNS lookup failed/,
      });
    }
    const outcomes = await Promise.all(
      cases.map(async (c) => {
        await waitForDeliveryStatus(
          db,
          c.deliveryId,
          ['dead'],
          20_000,
          `delivery to ${c.host} dead-lettered`,
        );
        const [letter] = await dlqRows(db, c.deliveryId);
        return { ...c, letter: letter! };
      }),
    );
    const blockedAtOnce = outcomes.filter((o) => o.letter.attempts === 1).length;
    report('SSRF at connect time', {
      destinations: outcomes.length,
      dead_lettered: outcomes.length,
      blocked_on_first_attempt: blockedAtOnce,
      listener_connections: connections(),
    });
    for (const o of outcomes) {
      expect(o.letter.last_error, o.host).toMatch(o.expect);
      // A refused destination is refused again: no retry.
      if (o.expect.source.startsWith('^destination')) expect(o.letter.attempts, o.host).toBe(1);
    }
    expect(connections()).toBe(0);
  });
});

describe('as redirect targets', () => {
  it('a redirect from an allowed receiver is never followed, whatever it points to', async () => {
    const targets = [
      `http://127.0.0.1:${port}/`, // allowlisted in this service: only not following protects it
      `http://[::1]:${port}/`,
      `http://localhost:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://0.0.0.0:${port}/`,
      `http://[::]:${port}/`,
      `http://2130706433:${port}/`,
      `https://127.0.0.1:${port}/`,
      `//127.0.0.1:${port}/scheme-relative`,
      `http://169.254.169.254/latest/meta-data/`,
      `http://[fd00:ec2::254]/latest/meta-data/`,
      `http://10.0.0.1/`,
      `gopher://127.0.0.1:${port}/_x`,
      'file:///etc/passwd',
      '/same-host-path',
    ];
    const statuses = [301, 302, 303, 307, 308];
    redirector = await startReceiver({
      behaviour: (_i, request) => {
        const n = Number(/\/r\/(\d+)/.exec(request.path)?.[1] ?? 0);
        return { kind: 'redirect', status: statuses[n % statuses.length]!, location: targets[n]! };
      },
    });
    const db = open.service.database.db;
    const queued = await Promise.all(
      targets.map((_t, n) => queueDelivery(db, { url: `${redirector.url}/r/${n}` })),
    );
    const letters = await Promise.all(
      queued.map(async ({ deliveryId }) => {
        await waitForDeliveryStatus(db, deliveryId, ['dead'], 20_000, 'a redirected delivery dead-lettered');
        return (await dlqRows(db, deliveryId))[0]!;
      }),
    );
    report('SSRF redirects', {
      redirect_targets: targets.length,
      requests_to_redirector: redirector.requests.length,
      listener_connections: connections(),
    });
    letters.forEach((letter, n) => {
      expect(letter.last_error).toBe(
        `redirect (HTTP ${statuses[n % statuses.length]}) to ${targets[n]} not followed`,
      );
      expect(letter.attempts).toBe(2);
    });
    // Exactly one request per attempt reached the redirector: not even a same-host redirect was followed.
    expect(redirector.requests).toHaveLength(targets.length * 2);
    expect(connections()).toBe(0);
  });
});

it('the listeners did count connections (they are reachable when asked directly)', async () => {
  for (const host of ['127.0.0.1', '::1']) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
  }
  await waitFor(() => (connections() === 2 ? true : undefined), 2000, 'two connections counted');
  report('SSRF listeners', { direct_connections_counted: connections() });
});
