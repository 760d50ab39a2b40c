/**
 * Bearer tokens: HS256 JWTs with `tenant_id` (string), optional `role` (`tenant` | `admin`) and
 * optional `exp`. What a verified token grants is decided in tenancy/caller.ts.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, jwtVerify } from 'jose';
import type { Middleware } from 'koa';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import { isTenantId, type Principal, type Role } from '../tenancy/caller.js';

/** JWT_SECRET, or in development one generated once and kept in DATA_DIR. */
export async function loadJwtSecret(config: Pick<Config, 'jwtSecret' | 'dataDir'>): Promise<string> {
  if (config.jwtSecret) return config.jwtSecret;
  const file = path.join(config.dataDir, 'jwt-secret');
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    await fs.mkdir(config.dataDir, { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    // 'wx': if another process wrote it first, keep theirs.
    await fs.writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return (await fs.readFile(file, 'utf8')).trim();
  }
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

export async function verifyToken(secret: string | KeyObject, token: string): Promise<Principal> {
  let payload: Record<string, unknown>;
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  try {
    ({ payload } = await jwtVerify(token, key, { algorithms: ['HS256'] }));
  } catch (err) {
    const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
    throw new AppError('unauthorized', expired ? 'The token has expired.' : 'The token is invalid.');
  }
  const tenantId = payload.tenant_id;
  const role = payload.role ?? 'tenant';
  if (!isTenantId(tenantId)) {
    throw new AppError('unauthorized', 'The token has no valid tenant_id claim.');
  }
  if (role !== 'tenant' && role !== 'admin')
    throw new AppError('unauthorized', 'The token has an invalid role claim.');
  return { tenantId, role };
}

/** How long a verified token is remembered, at most (never past its own `exp`). */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

/**
 * Puts the caller in `ctx.state.principal`, or answers 401. The key is imported once, and a
 * token already verified is remembered for a minute (or until it expires, if sooner): an app
 * posting thousands of events a second with one token pays for one HMAC check a minute.
 */
export function authenticate(secret: string): Middleware {
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  const verified = new Map<string, { principal: Principal; until: number }>();
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw new AppError('unauthorized', 'Missing bearer token in the Authorization header.');
    const token = match[1];
    const now = Date.now();
    const known = verified.get(token);
    if (known && known.until > now) {
      ctx.state.principal = known.principal;
    } else {
      const principal = await verifyToken(key, token);
      const exp = decodeExp(token);
      if (verified.size >= VERIFIED_MAX) verified.clear();
      verified.set(token, { principal, until: Math.min(now + VERIFIED_TTL_MS, exp ?? Infinity) });
      ctx.state.principal = principal;
    }
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
