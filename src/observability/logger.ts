/**
 * JSON lines on stdout: `level`, `msg`, `time`, whatever fields a call adds, and `trace_id` and
 * `span_id` when a span is active. Never log a secret, a signature, a token or a payload.
 */
import winston from 'winston';
import { activeTraceIds } from './trace-context.js';

export type Logger = winston.Logger;

const rename = winston.format((info) => {
  const { message, timestamp, ...rest } = info as winston.Logform.TransformableInfo & { timestamp?: string };
  return { ...rest, msg: message, time: timestamp } as unknown as winston.Logform.TransformableInfo;
});

type Write = (chunk: unknown, ...rest: unknown[]) => boolean;

/**
 * Every log call (`info`, `log`, child loggers) ends in `logger.write(info)`. Entries below the
 * logger's level stop there. The trace ids are
 * added there, at the call, because winston may run its formats later, after the stream has
 * buffered the entry (under backpressure), when the caller's span is no longer the active one.
 */
function filterAndAddTraceIdsAtCall(logger: Logger): void {
  const write = logger.write.bind(logger) as Write;
  (logger as unknown as { write: Write }).write = (chunk, ...rest) => {
    // winston formats every entry before its transports filter by level: an entry below the
    // level would be turned into JSON only to be dropped. Drop it here instead.
    const level =
      typeof chunk === 'object' && chunk !== null ? (chunk as { level?: unknown }).level : undefined;
    if (typeof level === 'string' && !logger.isLevelEnabled(level)) return true;
    if (typeof chunk === 'object' && chunk !== null && !('trace_id' in chunk)) {
      const ids = activeTraceIds();
      if (ids) Object.assign(chunk, ids);
    }
    return write(chunk, ...rest);
  };
}

export function createLogger(level: string, options: { stream?: NodeJS.WritableStream } = {}): Logger {
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      rename(),
      winston.format.json(),
    ),
    transports: [
      options.stream
        ? new winston.transports.Stream({ stream: options.stream })
        : new winston.transports.Console(),
    ],
  });
  filterAndAddTraceIdsAtCall(logger);
  return logger;
}
