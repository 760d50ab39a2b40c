/** The portal sign-in API. Feeds docs/openapi.json. */
import type { Operation } from '../http/operation.js';
import { createPortalSessionSchema, portalSessionSchema } from './portal-session-schemas.js';

export const portalSessionOperations: Operation[] = [
  {
    method: 'post',
    path: '/portal/sessions',
    summary: 'Create a one-time sign-in link to the tenant portal',
    description:
      "A tenant token gets a link for its own tenant; an admin names the tenant in `tenant_id`. The link works once, within 10 minutes: opening it sets an `HttpOnly`, `SameSite=Strict` session cookie (12 h) for that tenant and redirects to the portal's pages. Audited as portal.session_link_created.",
    body: createPortalSessionSchema,
    bodyOptional: true,
    responses: { 201: { description: 'The link.', schema: portalSessionSchema } },
    errors: [400, 403, 413, 415],
  },
];
