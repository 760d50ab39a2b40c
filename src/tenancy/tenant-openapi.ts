/** The tenants API. Feeds docs/openapi.json. */
import type { Operation } from '../http/operation.js';
import { revokeTokensSchema, tokensRevokedSchema } from './tenant-schemas.js';

export const tenantOperations: Operation[] = [
  {
    method: 'post',
    path: '/tenants/{tenant_id}/revoke-tokens',
    summary: 'Revoke every token of a tenant issued until now (admin)',
    description:
      'Every token of the tenant issued before this moment (its `iat`; a token without one counts as issued at 0) gets 401 on every route of every process within 5 s. Audited as tenant.tokens_revoked.',
    body: revokeTokensSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The revocation.', schema: tokensRevokedSchema } },
    errors: [400, 403, 413, 415],
  },
];
