/** `npm run token -- --tenant ID [--admin] [--expires 1h]`: prints a bearer token. */
import { parseArgs } from 'node:util';
import { parseConfig } from '../config.js';
import { loadJwtSecret, signToken } from './auth.js';

const { values } = parseArgs({
  options: {
    tenant: { type: 'string' },
    admin: { type: 'boolean', default: false },
    expires: { type: 'string' },
  },
});
if (!values.tenant) {
  process.stderr.write('usage: npm run token -- --tenant ID [--admin] [--expires 1h]\n');
  process.exit(2);
}
const config = parseConfig();
const secret = await loadJwtSecret(config);
const token = await signToken(
  secret,
  { tenantId: values.tenant, role: values.admin ? 'admin' : 'tenant' },
  values.expires ? { expiresIn: values.expires } : {},
);
process.stdout.write(token + '\n');
