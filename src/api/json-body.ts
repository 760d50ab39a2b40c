/**
 * Reads a JSON request body: 415 unless it says it is JSON, 413 past MAX_PAYLOAD_BYTES, 400 when
 * it does not parse. A request without a body (no Content-Length, no Transfer-Encoding, or
 * Content-Length 0) has `ctx.request.body === undefined`.
 */
import type { Middleware } from 'koa';
import getRawBody from 'raw-body';
import { AppError } from '../errors.js';

declare module 'koa' {
  interface Request {
    body?: unknown;
  }
}

export function jsonBody(maxBytes: number): Middleware {
  return async (ctx, next) => {
    const hasBody =
      ctx.req.headers['transfer-encoding'] !== undefined ||
      (ctx.req.headers['content-length'] !== undefined && ctx.req.headers['content-length'] !== '0');
    if (!hasBody || ['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(ctx.method)) {
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
    let text: string;
    try {
      text = await getRawBody(ctx.req, { limit: maxBytes, encoding: 'utf8' });
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === 'entity.too.large') {
        throw new AppError('payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
      }
      throw new AppError('invalid_request', 'The request body could not be read.', { cause: err });
    }
    try {
      ctx.request.body = JSON.parse(text);
    } catch {
      throw new AppError('invalid_request', 'The request body is not valid JSON.');
    }
    await next();
  };
}
