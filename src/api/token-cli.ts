/**
 * `npm run token -- --tenant ID [--admin] [--expires 1h]`: prints a bearer token. Tokens expire
 * unless told not to: a leaked one is not valid for ever (and POST /tenants/:id/revoke-tokens
 * ends it sooner).
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../config.js';
import { loadJwtSecrets, signToken } from '../http/auth.js';

const USAGE = `usage: npm run token -- --tenant ID [--admin] [--expires DURATION]

  --tenant ID          the token's tenant_id
  --admin              an admin token (may act for any tenant)
  --expires DURATION   a lifetime such as 30m, 12h, 7d or 2w, or "never"
                       (default: 30d for a tenant token, 24h for an admin token)
  --help               this text
`;

/** What jose's setExpirationTime accepts as a relative time: a positive number and a unit. */
const DURATION =
  /^[1-9]\d*\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)$/i;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE.split('\n')[0]}\n`);
  process.exit(2);
}

let values: { tenant?: string; admin?: boolean; expires?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      tenant: { type: 'string' },
      admin: { type: 'boolean', default: false },
      expires: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!values.tenant) fail('--tenant is required');
const DEFAULT_EXPIRES = { tenant: '30d', admin: '24h' } as const;
const expires = values.expires?.trim() ?? DEFAULT_EXPIRES[values.admin ? 'admin' : 'tenant'];
if (expires !== 'never' && !DURATION.test(expires)) {
  fail(`--expires must be a positive duration such as 30m, 12h or 7d, or never, got "${values.expires}"`);
}
try {
  const config = parseConfig();
  const [secret] = await loadJwtSecrets(config);
  const token = await signToken(
    secret!,
    { tenantId: values.tenant, role: values.admin ? 'admin' : 'tenant' },
    expires === 'never' ? {} : { expiresIn: expires },
  );
  process.stdout.write(token + '\n');
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  fail(`could not make a token: ${err instanceof Error ? err.message : String(err)}`);
}
