import type { Generated } from 'kysely';

/** portal link: a one-time sign-in link to the tenant portal (migration 030). */
export interface PortalLinkTable {
  /** SHA-256 (hex) of the token in the link; the token itself is never stored. */
  token_hash: string;
  tenant_id: string;
  created_at: Generated<Date>;
  /** Ten minutes after creation; the link is refused after it. */
  expires_at: Date;
  /** When the link was opened; a used link is refused. */
  used_at: Date | null;
}
