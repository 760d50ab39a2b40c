/**
 * Reads a JSON request body: 415 unless it says it is JSON, 413 past MAX_PAYLOAD_BYTES, 400 when
 * it does not parse. A request without a body (no Content-Length, no Transfer-Encoding, or
 * Content-Length 0) has `ctx.request.body === undefined`.
 */
import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import getRawBody from 'raw-body';
import { AppError } from '../errors.js';

declare module 'koa' {
  interface Request {
    body?: unknown;
  }
}

const sendsBody = (headers: Record<string, string | string[] | undefined>): boolean =>
  headers['transfer-encoding'] !== undefined ||
  (headers['content-length'] !== undefined && headers['content-length'] !== '0');

const BODILESS_METHODS = ['GET', 'HEAD', 'DELETE', 'OPTIONS'];

/** The whole body as UTF-8 text: 413 past `maxBytes`, 400 when it cannot be read. */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  try {
    return await getRawBody(req, { limit: maxBytes, encoding: 'utf8' });
  } catch (err) {
    if ((err as { type?: string }).type === 'entity.too.large') {
      throw new AppError('payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
    }
    throw new AppError('invalid_request', 'The request body could not be read.', { cause: err });
  }
}

/**
 * A body sent with a method that takes none (GET, HEAD, DELETE, OPTIONS) is read and dropped
 * before the answer, up to MAX_PAYLOAD_BYTES (413 past it): answering while the client is still
 * sending would make the connection end in a reset instead of the answer.
 */
export function discardUnusedBody(maxBytes: number): Middleware {
  return async (ctx, next) => {
    if (sendsBody(ctx.req.headers) && BODILESS_METHODS.includes(ctx.method))
      await readBody(ctx.req, maxBytes);
    await next();
  };
}

export function jsonBody(maxBytes: number): Middleware {
  return async (ctx, next) => {
    if (!sendsBody(ctx.req.headers) || BODILESS_METHODS.includes(ctx.method)) {
      await next();
      return;
    }
    if (!ctx.is('application/json', '+json')) {
      throw new AppError(
        'unsupported_media_type',
        'The request body must be JSON (Content-Type: application/json).',
      );
    }
    const declared = Number(ctx.req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      throw new AppError('payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
    }
    const text = await readBody(ctx.req, maxBytes);
    try {
      ctx.request.body = JSON.parse(text);
    } catch {
      throw new AppError('invalid_request', 'The request body is not valid JSON.');
    }
    // `1e999` parses to Infinity, which no column or jsonb value can hold (SQL fails, or it
    // silently becomes null). The cheap test keeps the walk off the usual path.
    if (MAYBE_TOO_LARGE_NUMBER.test(text) && holdsNonFiniteNumber(ctx.request.body)) {
      throw new AppError('invalid_request', 'The request body holds a number too large to represent.');
    }
    await next();
  };
}

/** An exponent of three digits or more, or a run of 309 digits: the only ways to write ±Infinity in JSON. */
const MAYBE_TOO_LARGE_NUMBER = /[eE][+]?\d{3}|\d{309}/;

/** Whether any number in the parsed value is ±Infinity (iterative: bodies may nest deeply). */
function holdsNonFiniteNumber(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return true;
    } else if (typeof value === 'object' && value !== null) {
      for (const child of Object.values(value)) stack.push(child);
    }
  }
  return false;
}
