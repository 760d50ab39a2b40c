/**
 * JSON lines on stdout: `level`, `msg`, `time`, and whatever fields a call adds. Never log a
 * secret, a signature, a token or a payload.
 */
import winston from 'winston';

export type Logger = winston.Logger;

const rename = winston.format((info) => {
  const { message, timestamp, ...rest } = info as winston.Logform.TransformableInfo & { timestamp?: string };
  return { ...rest, msg: message, time: timestamp } as unknown as winston.Logform.TransformableInfo;
});

export function createLogger(level: string, options: { stream?: NodeJS.WritableStream } = {}): Logger {
  return winston.createLogger({
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
}
