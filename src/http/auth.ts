/**
 * Bearer tokens: HS256 JWTs with `tenant_id` (string), optional `role` (`tenant` | `admin`),
 * optional `exp`, and `iat` (a tenant's revocation refuses tokens issued before it; a token
 * without `iat` counts as issued at 0). What a verified token grants is decided in
 * tenancy/caller.ts.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { Middleware } from 'koa';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { readOrCreateDevKey } from '../secrets/dev-key-file.js';
import { isRevoked, isTenantId, type Principal, type Role } from '../tenancy/caller.js';

/**
 * JWT_SECRETS (or JWT_SECRET), or in development one generated once and kept in DATA_DIR. The
 * first signs; every one verifies (an overlap while JWT_SECRET is rotated).
 */
export async function loadJwtSecrets(config: Pick<Config, 'jwtSecrets' | 'dataDir'>): Promise<string[]> {
  if (config.jwtSecrets.length > 0) return [...config.jwtSecrets];
  const { text } = await readOrCreateDevKey(config.dataDir, 'jwt-secret', () =>
    randomBytes(32).toString('base64url'),
  );
  return [text];
}

export async function signToken(
  secret: string,
  claims: { tenantId: string; role?: Role },
  options: { expiresIn?: string | number } = {},
): Promise<string> {
  const jwt = new SignJWT({ tenant_id: claims.tenantId, role: claims.role ?? 'tenant' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt();
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A verified token's caller, and when it was issued (`iat`, in seconds; 0 without one). */
export interface VerifiedToken {
  principal: Principal;
  issuedAt: number;
}

/** Verifies with each key in turn (JWT_SECRETS: the new key, then the old ones). */
export async function verifyToken(keys: readonly KeyObject[], token: string): Promise<VerifiedToken> {
  let payload: Record<string, unknown> | undefined;
  let expired = false;
  for (const key of keys) {
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
      break;
    } catch (err) {
      // jose checks the signature before the claims: an expired token was signed with this key.
      if ((err as { code?: string }).code === 'ERR_JWT_EXPIRED') expired = true;
    }
  }
  if (!payload)
    throw new AppError('unauthorized', expired ? 'The token has expired.' : 'The token is invalid.');
  const tenantId = payload.tenant_id;
  const role = payload.role ?? 'tenant';
  if (!isTenantId(tenantId)) {
    throw new AppError('unauthorized', 'The token has no valid tenant_id claim.');
  }
  if (role !== 'tenant' && role !== 'admin')
    throw new AppError('unauthorized', 'The token has an invalid role claim.');
  const issuedAt = typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat : 0;
  return { principal: { tenantId, role }, issuedAt };
}

/** How long a verified token is remembered, at most (never past its own `exp`). */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

export interface AuthOptions {
  /**
   * When the tenant's tokens were last revoked (ms), if ever: a token issued in that second or
   * before is refused. Asked on every request, so it must answer from memory.
   */
  tokensValidAfter?: (tenantId: string) => number | undefined;
}

/**
 * Puts the caller in `ctx.state.principal`, or answers 401. The keys are imported once, and a
 * token already verified is remembered for a minute (or until it expires, if sooner): an app
 * posting thousands of events a second with one token pays for one HMAC check a minute. A
 * revocation applies to remembered tokens too: it is checked on every request.
 */
export function authenticate(secrets: readonly string[], options: AuthOptions = {}): Middleware {
  const keys = secrets.map((secret) => createSecretKey(Buffer.from(secret, 'utf8')));
  const verified = new Map<string, VerifiedToken & { until: number }>();
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw new AppError('unauthorized', 'Missing bearer token in the Authorization header.');
    const token = match[1];
    const now = Date.now();
    let known = verified.get(token);
    if (!known || known.until <= now) {
      const result = await verifyToken(keys, token);
      const exp = decodeExp(token);
      if (verified.size >= VERIFIED_MAX) verified.clear();
      known = { ...result, until: Math.min(now + VERIFIED_TTL_MS, exp ?? Infinity) };
      verified.set(token, known);
    }
    if (isRevoked(known.issuedAt, options.tokensValidAfter?.(known.principal.tenantId))) {
      throw new AppError('unauthorized', 'The token has been revoked.');
    }
    ctx.state.principal = known.principal;
    await next();
  };
}

/** `exp` of a token whose signature was just checked, in ms. */
function decodeExp(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
