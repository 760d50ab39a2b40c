import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Middleware } from 'koa';
import { AppError } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** PostgreSQL and node-postgres errors that mean "the database is not reachable right now". */
function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (
    e.code &&
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      '57P01',
      '57P02',
      '57P03',
      '08000',
      '08003',
      '08006',
      '08001',
      '08004',
    ].includes(e.code)
  ) {
    return true;
  }
  return /timeout exceeded when trying to connect|Connection terminated|connection error|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}

/**
 * The one place an error becomes an answer: `{"error": {"code", "message", "details"?}}`.
 * Unknown errors are logged and answered as a plain 500 without a stack trace.
 */
export function errorMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError('not_found', `No route for ${ctx.method} ${ctx.path}.`);
      }
    } catch (err) {
      let appError: AppError;
      if (err instanceof AppError) appError = err;
      else if (isDatabaseUnavailable(err)) {
        appError = new AppError('service_unavailable', 'The database is not reachable; try again shortly.', {
          headers: { 'Retry-After': '5' },
        });
        logger.warn('database unavailable', { request_id: ctx.state.requestId, err: (err as Error).message });
      } else {
        appError = new AppError('internal_error', 'Something went wrong on our side.');
        logger.error('request failed', {
          request_id: ctx.state.requestId,
          err: (err as Error)?.message,
          stack: (err as Error)?.stack,
        });
      }
      ctx.status = appError.status;
      for (const [name, value] of Object.entries(appError.headers ?? {})) ctx.set(name, value);
      ctx.body = {
        error: {
          code: appError.code,
          message: appError.message,
          ...(appError.details ? { details: appError.details } : {}),
        },
      };
    }
  };
}

/**
 * For the HTTP server's `clientError`: a request its parser refuses (a malformed request line
 * or header, bad framing, data after `Connection: close`, headers too large) never reaches Koa.
 * It still gets the error shape, and the connection is closed — as Node would do, but in JSON.
 */
export function answerUnparsableRequest(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this connection cannot be followed by another one.
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'The request headers are too large.']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'The request did not arrive in time.']
        : [400, 'invalid_request', 'The request is not valid HTTP.'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
