/**
 * Spellings of blocked destinations (loopback, private, link-local, CGNAT, multicast, unique-local,
 * NAT64, 6to4, reserved, and the localhost names) as the host of a URL, IPv6 in brackets: every one
 * must be refused when a webhook URL is registered (with an empty SSRF_ALLOWLIST).
 */
export const BLOCKED_HOSTS: readonly string[] = [
  '127.0.0.1',
  '2130706433',
  '0x7f.1',
  '017700000001',
  '127.1',
  '127.0.0.1.',
  '[::1]',
  '[::ffff:7f00:1]',
  '[::ffff:127.0.0.1]',
  '10.0.0.1',
  '172.16.0.1',
  '192.168.1.1',
  '169.254.169.254',
  '100.64.0.1',
  '224.0.0.1',
  '0.0.0.0',
  '0',
  '[::]',
  '[fd00::1]',
  '[fe80::1]',
  '[64:ff9b::7f00:1]',
  '[2002:7f00:1::]',
  '240.0.0.1',
  '255.255.255.255',
  'localhost',
  'api.localhost',
];

/** BLOCKED_HOSTS in the same order, leaving out those in `except`. */
export function blockedHosts(except: readonly string[] = []): string[] {
  return BLOCKED_HOSTS.filter((host) => !except.includes(host));
}
