/** The quotas API. Feeds docs/openapi.json. */
import type { Operation } from '../http/operation.js';
import { quotaChangedSchema, quotaChangeSchema, quotaViewSchema } from './quota-schemas.js';

export const quotaOperations: Operation[] = [
  {
    method: 'get',
    path: '/quotas/{tenant_id}',
    summary: "A tenant's limits and current usage",
    description: 'A tenant token reads its own tenant only; an admin token any.',
    responses: { 200: { description: 'Limits and usage.', schema: quotaViewSchema } },
    errors: [403, 404],
  },
  {
    method: 'put',
    path: '/quotas/{tenant_id}',
    summary: "Change a tenant's limits (admin)",
    description: 'Audited as quota.updated, whoever changes them (a trigger on the quotas table).',
    body: quotaChangeSchema,
    responses: { 200: { description: 'The limits now.', schema: quotaChangedSchema } },
    errors: [400, 403, 413, 415],
  },
];
