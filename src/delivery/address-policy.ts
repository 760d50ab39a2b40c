/**
 * Which destination addresses the service may connect to. Only public unicast passes:
 * loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved, unspecified,
 * IPv4-mapped/embedded forms of those, NAT64 and 6to4 are refused — unless the address is in
 * SSRF_ALLOWLIST. Used at registration (literal IPs in URLs) and at connect time (every
 * resolved address, see ssrf-guard).
 */
import ipaddr from 'ipaddr.js';

export type Cidr = readonly [ipaddr.IPv4 | ipaddr.IPv6, number];

export interface AddressVerdict {
  allowed: boolean;
  /** ipaddr.js range name, e.g. `loopback`, `private`, `linkLocal`, `unicast`. */
  range: string;
  /** The address in canonical form (IPv4-mapped IPv6 shown as IPv4). */
  address: string;
}

function inAllowlist(address: ipaddr.IPv4 | ipaddr.IPv6, allowlist: readonly Cidr[]): boolean {
  return allowlist.some(([network, bits]) => {
    if (address.kind() !== network.kind()) return false;
    return address.match([network, bits] as [typeof address, number]);
  });
}

/** Checks one IP address (any spelling ipaddr.js or the URL parser yields). Not an IP: refused. */
export function checkAddress(ip: string, allowlist: readonly Cidr[]): AddressVerdict {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (!ipaddr.isValid(bare)) return { allowed: false, range: 'invalid', address: ip };
  // process() turns ::ffff:a.b.c.d into a.b.c.d so that the IPv4 rules apply to it.
  const address = ipaddr.process(bare);
  const range = reservedIpv6(address) ? 'reserved' : address.range();
  const allowed =
    range === 'unicast' || inAllowlist(address, allowlist) || inAllowlist(ipaddr.parse(bare), allowlist);
  return { allowed, range, address: address.toString() };
}

const IETF_RESERVED_IPV6 = ipaddr.parseCIDR('::/8') as [ipaddr.IPv6, number];

/**
 * ::/8 is reserved by the IETF; what ipaddr.js names there (loopback, unspecified, mapped) has
 * its own range already. The rest — e.g. the deprecated IPv4-compatible `::127.0.0.1`, which
 * ipaddr.js calls unicast and some stacks once tunnelled to 127.0.0.1 — is no public address.
 */
function reservedIpv6(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return address.kind() === 'ipv6' && address.range() === 'unicast' && address.match(IETF_RESERVED_IPV6);
}

/**
 * The host of a URL as an IP literal, when it is one. The WHATWG URL parser has already turned
 * `2130706433`, `0x7f.1` or `127.1` into `127.0.0.1`, and put IPv6 in brackets.
 */
export function literalIpOf(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (ipaddr.IPv4.isValidFourPartDecimal(bare) || (bare.includes(':') && ipaddr.IPv6.isValid(bare)))
    return bare;
  return undefined;
}

/** Human words for a refusal: `127.0.0.1 is a loopback address`. */
export function describeRefusal(verdict: AddressVerdict): string {
  const words: Record<string, string> = {
    loopback: 'a loopback',
    private: 'a private',
    linkLocal: 'a link-local',
    uniqueLocal: 'a unique-local (private)',
    carrierGradeNat: 'a carrier-grade NAT',
    multicast: 'a multicast',
    unspecified: 'an unspecified',
    broadcast: 'a broadcast',
    reserved: 'a reserved',
    rfc6052: 'a NAT64',
    '6to4': 'a 6to4',
    teredo: 'a Teredo',
    rfc6145: 'an IPv4-translated',
    ipv4Mapped: 'an IPv4-mapped',
    benchmarking: 'a benchmarking',
    amt: 'an AMT',
    as112: 'an AS112',
    deprecated: 'a deprecated',
    orchid2: 'an ORCHIDv2',
    invalid: 'an invalid',
  };
  return `${verdict.address} is ${words[verdict.range] ?? `a ${verdict.range}`} address`;
}
