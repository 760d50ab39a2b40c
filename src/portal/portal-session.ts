/**
 * The portal's session: a cookie holding an HS256 JWT (tenant, session id, 12 h), and the CSRF
 * token bound to that session. Both are keyed from JWT_SECRET, but through a key of their own
 * (HMAC of the secret with a label), so a session cookie is never an API token and an API token
 * is never a session.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

export const SESSION_COOKIE = 'hookrelay_portal';
export const SESSION_TTL_SECONDS = 12 * 3600;
const AUDIENCE = 'hookrelay-portal';

export interface PortalSession {
  tenantId: string;
  /** Random per sign-in; the CSRF token is derived from it. */
  sessionId: string;
  /** Seconds since the epoch, as the JWT's `iat`. */
  issuedAt: number;
}

const sessionKey = (jwtSecret: string): Buffer =>
  createHmac('sha256', jwtSecret).update('hookrelay portal session').digest();

export async function signSession(jwtSecret: string, tenantId: string): Promise<string> {
  return new SignJWT({ tenant_id: tenantId, sid: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${SESSION_TTL_SECONDS}s`)
    .sign(sessionKey(jwtSecret));
}

/** The session in a cookie value, checked against every key; undefined if none verifies it. */
export async function verifySession(
  jwtSecrets: readonly string[],
  value: string | undefined,
): Promise<PortalSession | undefined> {
  if (!value) return undefined;
  for (const secret of jwtSecrets) {
    try {
      const { payload } = await jwtVerify(value, sessionKey(secret), {
        algorithms: ['HS256'],
        audience: AUDIENCE,
      });
      if (typeof payload.tenant_id !== 'string' || typeof payload.sid !== 'string') return undefined;
      return { tenantId: payload.tenant_id, sessionId: payload.sid, issuedAt: payload.iat ?? 0 };
    } catch {
      // try the next key
    }
  }
  return undefined;
}

export function csrfToken(jwtSecret: string, session: PortalSession): string {
  return createHmac('sha256', sessionKey(jwtSecret)).update(`csrf:${session.sessionId}`).digest('base64url');
}

export function csrfTokenMatches(jwtSecret: string, session: PortalSession, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const expected = Buffer.from(csrfToken(jwtSecret, session));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The Set-Cookie value; `secure` unless the request came over plain HTTP from this machine. */
export function sessionCookie(value: string, options: { secure: boolean; maxAgeSeconds: number }): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/portal',
    `Max-Age=${options.maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
