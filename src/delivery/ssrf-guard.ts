/**
 * The connect-time half of the SSRF defence. The outbound agents use `guardedLookup` as their
 * `lookup`: the host name is resolved once, every address is checked, and the socket connects
 * only to the addresses that were checked — so a DNS answer cannot change between the check
 * and the connect (rebinding). Node does not call `lookup` for IP literals, so a URL whose host
 * is a literal is checked with `checkLiteralDestination` before any request is made.
 */
import dns from 'node:dns';
import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { checkAddress, describeRefusal, literalIpOf, type Cidr } from './address-policy.js';

/** Thrown (or passed to the lookup callback) when a destination is refused. */
export class DestinationBlockedError extends Error {
  readonly code = 'ERR_DESTINATION_BLOCKED';
  constructor(reason: string) {
    super(`destination blocked: ${reason}`);
    this.name = 'DestinationBlockedError';
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export type LookupFunction = (
  hostname: string,
  options: LookupOneOptions | LookupAllOptions | number | undefined,
  callback: LookupCallback,
) => void;

/** The first refused address among `addresses`, in words; undefined when all pass. */
export function firstRefusal(addresses: readonly string[], allowlist: readonly Cidr[]): string | undefined {
  for (const address of addresses) {
    const verdict = checkAddress(address, allowlist);
    if (!verdict.allowed) return describeRefusal(verdict);
  }
  return undefined;
}

/**
 * A `lookup` for `http.Agent`/`https.Agent` (passed on to `net.connect`). It answers both shapes
 * Node asks for: `{all: true}` → `callback(err, addresses[])` (used by autoSelectFamily), and
 * otherwise `callback(err, address, family)`.
 */
export function createGuardedLookup(
  allowlist: readonly Cidr[],
  onBlocked: (reason: string) => void = () => undefined,
  resolve: typeof dns.lookup = dns.lookup,
): LookupFunction {
  return (hostname, rawOptions, callback) => {
    const options = typeof rawOptions === 'number' ? { family: rawOptions } : (rawOptions ?? {});
    resolve(hostname, { family: options.family ?? 0, hints: options.hints, all: true }, (err, addresses) => {
      if (err) {
        callback(err, options.all ? [] : '', 0);
        return;
      }
      const list = addresses as LookupAddress[];
      if (list.length === 0) {
        const notFound: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        notFound.code = 'ENOTFOUND';
        callback(notFound, options.all ? [] : '', 0);
        return;
      }
      // Every address must pass, not just the one we would try first: with several A/AAAA
      // records the socket may fall back to any of them.
      const refusal = firstRefusal(
        list.map((entry) => entry.address),
        allowlist,
      );
      if (refusal !== undefined) {
        onBlocked(refusal);
        callback(new DestinationBlockedError(refusal), options.all ? [] : '', 0);
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** For a URL whose host is an IP literal: the refusal in words, or undefined when allowed or not a literal. */
export function checkLiteralDestination(url: URL, allowlist: readonly Cidr[]): string | undefined {
  const literal = literalIpOf(url.hostname);
  if (literal === undefined) return undefined;
  return firstRefusal([literal], allowlist);
}
