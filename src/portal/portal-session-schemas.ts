/** Request and answer shapes of POST /portal/sessions; they feed docs/openapi.json. */
import { tenantIdSchema, timestamp } from '../http/common-schemas.js';

export interface CreatePortalSessionBody {
  tenant_id?: string;
}

export const createPortalSessionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { tenant_id: tenantIdSchema },
} as const;

export const portalSessionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'expires_at'],
  properties: {
    url: {
      type: 'string',
      format: 'uri',
      description:
        'Opens the portal once, within 10 minutes: it sets the session cookie and redirects to /portal/.',
    },
    expires_at: timestamp,
  },
} as const;
