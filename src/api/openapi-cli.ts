/** `npx tsx src/api/openapi-cli.ts`: writes docs/openapi.json from the schemas. */
import fs from 'node:fs/promises';
import { buildOpenApiDocument } from './openapi.js';

const target = new URL('../../docs/openapi.json', import.meta.url);
await fs.writeFile(target, JSON.stringify(buildOpenApiDocument(), null, 2) + '\n');
process.stdout.write(`wrote ${target.pathname}\n`);
