import type { ColumnType, Generated } from 'kysely';

export type WebhookOrdering = 'none' | 'fifo';

/** webhook: a subscription, i.e. a tenant's endpoint URL and the event types it receives. */
export interface WebhookTable {
  id: string;
  tenant_id: string;
  url: string;
  description: string | null;
  /** Exact names, `prefix.*`, or `*`. */
  event_types: string[];
  /** `hmac-sha256` (signature `v1`) or `ed25519` (signature `v1a`). */
  signature_type: ColumnType<'hmac-sha256' | 'ed25519', 'hmac-sha256' | 'ed25519' | undefined>;
  /**
   * Signing secret, encrypted (webhook-secrets.ts): an HMAC secret (`whsec_` + base64 key, or a
   * string given at creation), or for ed25519 the private key (`whsk_` + base64 seed).
   */
  secret: string;
  /** The secret before the last rotation, encrypted; it also signs until `previous_secret_expires_at`. */
  previous_secret: string | null;
  /** Key of the ring `secret` and `previous_secret` are encrypted under; null = still plain text. */
  secret_key_id: string | null;
  /** ed25519 only: `whpk_` + base64 of the public key. */
  public_key: string | null;
  previous_secret_expires_at: Date | null;
  /** SQL/JSON path predicate over the body a receiver gets; null: no filter. */
  filter: string | null;
  /** `fifo`: one delivery at a time, in event order; `none`: in parallel. */
  ordering: ColumnType<WebhookOrdering, WebhookOrdering | undefined, WebhookOrdering>;
  /** The last fifo_seq given to one of its deliveries. */
  fifo_next: ColumnType<string, never, never>;
  /** Per-attempt timeout; null = DELIVERY_TIMEOUT_MS. */
  timeout_ms: number | null;
  enabled: Generated<boolean>;
  disabled_reason: string | null;
  disabled_at: Date | null;
  /** Start of the current unbroken run of failed attempts. */
  failing_since: Date | null;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}
