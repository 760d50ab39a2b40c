/** The event type catalog API. Feeds docs/openapi.json. */
import type { Operation } from '../http/operation.js';
import {
  eventTypeListSchema,
  eventTypeViewSchema,
  putEventTypeSchema,
  tenantQuerySchema,
  tenantSettingsSchema,
  tenantSettingsViewSchema,
} from './event-type-schemas.js';

export const eventTypeOperations: Operation[] = [
  {
    method: 'get',
    path: '/event-types',
    summary: "The tenant's event type catalog",
    description:
      'Its own types by name, then the service\u2019s built-in operational types (hookrelay.*, read-only), each with the number of webhooks that receive it.',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The catalog.', schema: eventTypeListSchema } },
    errors: [400, 403],
  },
  {
    method: 'put',
    path: '/event-types/{name}',
    summary: 'Create or replace an event type',
    description:
      'With a schema (JSON Schema draft 2020-12), POST /events checks each payload of this type against it (a mismatch is a 400 naming each failing field). An invalid schema is a 400 saying where.',
    body: putEventTypeSchema,
    responses: {
      200: { description: 'Replaced.', schema: eventTypeViewSchema },
      201: { description: 'Created.', schema: eventTypeViewSchema },
    },
    errors: [400, 403, 413, 415],
  },
  {
    method: 'get',
    path: '/event-types/{name}',
    summary: 'Read an event type',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The event type.', schema: eventTypeViewSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'delete',
    path: '/event-types/{name}',
    summary: 'Remove an event type from the catalog',
    query: tenantQuerySchema,
    responses: { 204: { description: 'Removed.' } },
    errors: [400, 403, 404],
  },
  {
    method: 'put',
    path: '/tenants/{tenant_id}/settings',
    summary: "Set the tenant's unknown_event_types",
    description: 'reject: POST /events (and hookrelay.emit) refuse types not in the catalog.',
    body: tenantSettingsSchema,
    responses: { 200: { description: 'The settings.', schema: tenantSettingsViewSchema } },
    errors: [400, 403, 413, 415],
  },
];
