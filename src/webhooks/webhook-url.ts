/**
 * The registration-time check of a webhook URL: http(s) only (https only with
 * WEBHOOK_HTTPS_ONLY, the production default), no credentials, and no literal
 * address in a blocked range unless SSRF_ALLOWLIST has it. Host names are checked again, after
 * resolution, when a delivery connects.
 */
import { AppError } from '../errors.js';
import { checkAddress, describeRefusal, literalIpOf, type Cidr } from '../delivery/address-policy.js';

/** Names that never leave the machine (RFC 6761); checked as the loopback address. */
const LOOPBACK_NAME = /^(?:localhost|[^.]+(?:\.[^.]+)*\.localhost)\.?$/i;

/** Why the URL is refused, or undefined when it may be registered. */
export function webhookUrlProblem(
  raw: string,
  allowlist: readonly Cidr[],
  policy: { httpsOnly?: boolean } = {},
): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return 'is not a valid URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must use http or https';
  if (policy.httpsOnly && parsed.protocol !== 'https:')
    return 'must use https: this service sends webhooks over https only (WEBHOOK_HTTPS_ONLY)';
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain credentials';
  if (parsed.hostname === '') return 'must name a host';
  const literal =
    literalIpOf(parsed.hostname) ?? (LOOPBACK_NAME.test(parsed.hostname) ? '127.0.0.1' : undefined);
  if (literal === undefined) return undefined;
  const verdict = checkAddress(literal, allowlist);
  if (verdict.allowed) return undefined;
  return `points to a blocked destination: ${describeRefusal(verdict)}`;
}

export function assertWebhookUrl(
  raw: string,
  allowlist: readonly Cidr[],
  policy: { httpsOnly?: boolean } = {},
): void {
  const problem = webhookUrlProblem(raw, allowlist, policy);
  if (problem === undefined) return;
  throw new AppError('invalid_request', `The webhook URL ${problem}.`, {
    details: [{ field: '/url', message: problem }],
  });
}
