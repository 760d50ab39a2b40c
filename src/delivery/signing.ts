/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the signed content is
 * `${id}.${timestamp}.${body}`, the signature `v1,<base64 HMAC-SHA256>`. A `whsec_` secret's key
 * is the base64 after the prefix; any other secret is used as its UTF-8 bytes. During a rotation
 * the header carries one signature per active secret, space-separated, so a receiver holding
 * either secret verifies.
 */
import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** The HMAC key of a secret. */
export function signingKey(secret: string): Buffer {
  if (secret.startsWith(SECRET_PREFIX)) return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
  return Buffer.from(secret, 'utf8');
}

/** One `v1,<base64>` signature. `timestamp` is unix seconds. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', signingKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The `webhook-signature` value: one signature per secret, space-separated. */
export function signatureHeader(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string,
): string {
  return secrets.map((secret) => sign(secret, id, timestamp, body)).join(' ');
}

export interface WebhookSecrets {
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
}

/** The secrets that sign now: the current one, and the previous one until it expires. */
export function activeSecrets(webhook: WebhookSecrets, now: Date): string[] {
  const previousActive =
    webhook.previous_secret !== null &&
    webhook.previous_secret_expires_at !== null &&
    webhook.previous_secret_expires_at.getTime() > now.getTime();
  return previousActive ? [webhook.secret, webhook.previous_secret!] : [webhook.secret];
}
