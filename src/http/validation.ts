/**
 * ajv schemas compiled once; a failing input becomes one 400 whose `details` lists every field
 * that failed (unknown fields too: schemas say `additionalProperties: false`).
 */
import { Ajv, type ErrorObject, type JSONSchemaType, type Schema } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import { AppError, type ErrorDetail } from '../errors.js';

// ajv-formats is CommonJS; under ESM its function arrives as `default`.
const addFormats = addFormatsModule.default as unknown as typeof addFormatsModule.default.default;

export const ajv = new Ajv({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false });
addFormats(ajv, ['date-time', 'uri', 'uuid']);

/** Query strings arrive as strings: this instance coerces "10" to 10 and "true" to true. */
export const queryAjv = new Ajv({ allErrors: true, strict: true, coerceTypes: true, useDefaults: true });
addFormats(queryAjv, ['date-time', 'uri', 'uuid']);

/** For unknown fields someone may well try: what to say instead of "is not a known field". */
export type FieldHints = Readonly<Record<string, string>>;

function describe(error: ErrorObject, hints: FieldHints): ErrorDetail {
  const base = error.instancePath || '';
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = `${base}/${(error.params as { additionalProperty: string }).additionalProperty}`;
      return { field, message: hints[field] ?? 'is not a known field' };
    }
    case 'required':
      return {
        field: `${base}/${(error.params as { missingProperty: string }).missingProperty}`,
        message: 'is required',
      };
    default:
      return { field: base || '/', message: error.message ?? 'is invalid' };
  }
}

export type Validator<T> = (input: unknown) => T;

function makeValidator<T>(
  instance: Ajv,
  schema: Schema | JSONSchemaType<T>,
  what: string,
  hints: FieldHints = {},
): Validator<T> {
  const validate = instance.compile<T>(schema as Schema);
  return (input: unknown): T => {
    if (validate(input)) return input;
    const details = (validate.errors ?? []).map((error) => describe(error, hints));
    throw new AppError('invalid_request', `The ${what} is invalid.`, { details });
  };
}

export const bodyValidator = <T>(schema: Schema | JSONSchemaType<T>, hints?: FieldHints): Validator<T> =>
  makeValidator<T>(ajv, schema, 'request body', hints);

export function queryValidator<T>(schema: Schema | JSONSchemaType<T>): Validator<T> {
  const validate = makeValidator<T>(queryAjv, schema, 'query string');
  return (input: unknown): T => {
    // A parameter given twice arrives as an array; say so rather than "must be integer".
    const repeated = Object.entries((input ?? {}) as Record<string, unknown>)
      .filter(([, value]) => Array.isArray(value))
      .map(([name]) => ({ field: `/${name}`, message: 'is repeated; give it once' }));
    if (repeated.length > 0)
      throw new AppError('invalid_request', 'The query string is invalid.', { details: repeated });
    const query = validate(input);
    // Coercion turns "1e999" into Infinity, and ajv lets that through `integer` and `maximum`.
    const details = Object.entries(query as Record<string, unknown>)
      .filter(([, value]) => typeof value === 'number' && !Number.isFinite(value))
      .map(([name]) => ({ field: `/${name}`, message: 'must be a finite number' }));
    if (details.length > 0)
      throw new AppError('invalid_request', 'The query string is invalid.', { details });
    return query;
  };
}

/** A path parameter that must be a UUID; anything else is a 404 (no such object). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function uuidParam(value: string | undefined, what: string): string {
  if (!value || !UUID.test(value)) throw new AppError('not_found', `${what} not found.`);
  return value.toLowerCase();
}
