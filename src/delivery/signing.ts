/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the signed content is
 * `${id}.${timestamp}.${body}`.
 *
 * - `hmac-sha256` (the default): `v1,<base64 HMAC-SHA256>`. A `whsec_` secret's key is the
 *   base64 after the prefix; any other secret is used as its UTF-8 bytes.
 * - `ed25519`: `v1a,<base64 ed25519 signature>`. The secret is the private key, `whsk_` + base64
 *   of its 32-byte seed; receivers verify with the public key, `whpk_` + base64 of its 32 bytes.
 *
 * During a rotation the header carries one signature per active key, space-separated, so a
 * receiver holding either verifies.
 */
import {
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  sign as signAsymmetric,
  type KeyObject,
} from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
const PRIVATE_KEY_PREFIX = 'whsk_';
const PUBLIC_KEY_PREFIX = 'whpk_';
/** DER around a raw 32-byte ed25519 seed (PKCS #8) and public key (SPKI). */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export type SignatureType = 'hmac-sha256' | 'ed25519';

/** A key that signs: an HMAC key (`v1`) or an ed25519 private key (`v1a`). */
export type SigningKey = { type: 'hmac-sha256'; key: Buffer } | { type: 'ed25519'; key: KeyObject };

/** The HMAC key of a secret. */
function signingKey(secret: string): Buffer {
  if (secret.startsWith(SECRET_PREFIX)) return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
  return Buffer.from(secret, 'utf8');
}

/** The key a stored secret of this type signs with. */
export function signingKeyOf(type: SignatureType, secret: string): SigningKey {
  if (type === 'hmac-sha256') return { type, key: signingKey(secret) };
  if (!secret.startsWith(PRIVATE_KEY_PREFIX)) throw new Error('an ed25519 secret must start with whsk_');
  const seed = Buffer.from(secret.slice(PRIVATE_KEY_PREFIX.length), 'base64');
  if (seed.length !== 32) throw new Error('an ed25519 secret must hold 32 bytes');
  return {
    type,
    key: createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' }),
  };
}

/** A new ed25519 key pair: the private key as the webhook's secret, and the public key receivers get. */
export function generateEd25519Secret(): { secret: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  return { secret: PRIVATE_KEY_PREFIX + seed.toString('base64'), publicKey: publicKeyText(publicKey) };
}

function publicKeyText(key: KeyObject): string {
  return (
    PUBLIC_KEY_PREFIX +
    key.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length).toString('base64')
  );
}

/** One signature: `v1,<base64 HMAC>` or `v1a,<base64 ed25519>`. */
export function signWith(key: SigningKey, id: string, timestamp: number, body: string): string {
  const content = `${id}.${timestamp}.${body}`;
  if (key.type === 'ed25519') {
    return `v1a,${signAsymmetric(null, Buffer.from(content, 'utf8'), key.key).toString('base64')}`;
  }
  return `v1,${createHmac('sha256', key.key).update(content).digest('base64')}`;
}

/** The `webhook-signature` value: one signature per key, space-separated. */
export function signatureHeader(
  keys: readonly SigningKey[],
  id: string,
  timestamp: number,
  body: string,
): string {
  return keys.map((key) => signWith(key, id, timestamp, body)).join(' ');
}

export interface WebhookSecrets<T = string> {
  secret: T;
  previous_secret: T | null;
  previous_secret_expires_at: Date | null;
}

/** The secrets that sign now: the current one, and the previous one until it expires. */
export function activeSecrets<T>(webhook: WebhookSecrets<T>, now: Date): T[] {
  const previousActive =
    webhook.previous_secret !== null &&
    webhook.previous_secret_expires_at !== null &&
    webhook.previous_secret_expires_at.getTime() > now.getTime();
  return previousActive ? [webhook.secret, webhook.previous_secret!] : [webhook.secret];
}
