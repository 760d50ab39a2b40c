/** The audit log API. Feeds docs/openapi.json. */
import { type Operation, type JsonSchema } from '../http/operation.js';
import { auditEntrySchema, listAuditQuerySchema } from './audit-schemas.js';
import { listAnswerSchema } from '../http/common-schemas.js';

export const auditOperations: Operation[] = [
  {
    method: 'get',
    path: '/audit-log',
    summary: 'List audit rows, newest first',
    description: 'A tenant sees rows of its own tenant; an admin token without tenant_id sees all.',
    query: listAuditQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(auditEntrySchema) as JsonSchema } },
    errors: [400, 403],
  },
];
