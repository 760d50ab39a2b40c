/** Request and answer shapes of the tenants API, as JSON schemas; they feed docs/openapi.json. */
import { tenantIdSchema, timestamp } from '../http/common-schemas.js';

/** POST /tenants/:tenant_id/revoke-tokens takes no fields (the body may be left out). */
export const revokeTokensSchema = { type: 'object', additionalProperties: false, properties: {} } as const;

export const tokensRevokedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant_id', 'tokens_valid_after'],
  properties: {
    tenant_id: tenantIdSchema,
    tokens_valid_after: {
      ...timestamp,
      description:
        'Tokens of the tenant issued (`iat`) in this second or before get 401 in every process within 5 s; tokens minted from the next second on work.',
    },
  },
} as const;
