/**
 * What a receiver gets: `POST <url>` with `{"type", "timestamp", "data"}` and the Standard
 * Webhooks headers. The body is serialised once and signed as sent, byte for byte.
 */
import fs from 'node:fs';
import { signatureHeader, type SigningKey } from './signing.js';

function readVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return process.env.npm_package_version ?? '0.0.0';
  }
}

export const USER_AGENT = `hookrelay/${readVersion()} (webhook delivery)`;

export interface DeliveryRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface DeliveryRequestInput {
  deliveryId: string;
  /** The keys that sign now (the current one, and the previous one during a rotation), already decrypted. */
  webhook: { url: string; keys: readonly SigningKey[] };
  event: { type: string; payload: unknown; created_at: Date };
  now: Date;
}

export function buildDeliveryRequest(input: DeliveryRequestInput): DeliveryRequest {
  const body = JSON.stringify({
    type: input.event.type,
    timestamp: input.event.created_at.toISOString(),
    data: input.event.payload,
  });
  const timestamp = Math.floor(input.now.getTime() / 1000);
  return {
    url: input.webhook.url,
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': input.deliveryId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(input.webhook.keys, input.deliveryId, timestamp, body),
      'user-agent': USER_AGENT,
    },
  };
}
