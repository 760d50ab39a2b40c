/** Checks an API answer against the JSON schema the route declares for it. */
import { ajv } from '../../src/http/validation.js';

/** Throws, with ajv's errors, when `body` does not match `schema`. */
export function expectSchema(schema: object, body: unknown): void {
  const validate = ajv.compile(schema);
  if (!validate(body))
    throw new Error(`answer does not match its schema: ${ajv.errorsText(validate.errors)}`);
}
