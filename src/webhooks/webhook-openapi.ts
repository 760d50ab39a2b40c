/** The webhooks API: subscriptions, their secrets, and recovery. Feeds docs/openapi.json. */
import { type Operation, type JsonSchema } from '../http/operation.js';
import { requeuedCountSchema } from '../delivery/delivery-schemas.js';
import { listAnswerSchema, tenantQuerySchema } from '../http/common-schemas.js';
import {
  createWebhookSchema,
  listWebhooksQuerySchema,
  recoverSchema,
  rotateSecretSchema,
  updateWebhookSchema,
  webhookSecretSchema,
  webhookViewSchema,
  webhookWithSecretSchema,
  filterTestSchema,
  filterTestAnswerSchema,
} from './webhook-schemas.js';

export const webhookOperations: Operation[] = [
  {
    method: 'post',
    path: '/webhooks',
    summary: 'Register a webhook',
    description: 'The only answer (with rotate-secret and GET …/secret) that shows the secret.',
    body: createWebhookSchema,
    responses: { 201: { description: 'Created.', schema: webhookWithSecretSchema } },
    errors: [400, 403, 413, 415],
  },
  {
    method: 'get',
    path: '/webhooks',
    summary: 'List webhooks, newest first',
    description: 'An admin token without tenant_id lists every tenant.',
    query: listWebhooksQuerySchema,
    responses: { 200: { description: 'A page.', schema: listAnswerSchema(webhookViewSchema) as JsonSchema } },
    errors: [400, 403],
  },
  {
    method: 'get',
    path: '/webhooks/{id}',
    summary: 'Read a webhook (without its secret)',
    query: tenantQuerySchema,
    responses: { 200: { description: 'The webhook.', schema: webhookViewSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'get',
    path: '/webhooks/{id}/secret',
    summary: "Read a webhook's current signing secret",
    query: tenantQuerySchema,
    responses: { 200: { description: 'The secret.', schema: webhookSecretSchema } },
    errors: [400, 403, 404],
  },
  {
    method: 'patch',
    path: '/webhooks/{id}',
    summary: 'Change a webhook',
    description:
      '`enabled: false` records disabled_reason ("disabled by <tenant>:<role>") and disabled_at; `enabled: true` clears them and failing_since.',
    body: updateWebhookSchema,
    responses: { 200: { description: 'The changed webhook.', schema: webhookViewSchema } },
    errors: [400, 403, 404, 413, 415],
  },
  {
    method: 'delete',
    path: '/webhooks/{id}',
    summary: 'Delete a webhook, with its deliveries and dead letters',
    query: tenantQuerySchema,
    responses: { 204: { description: 'Deleted.' } },
    errors: [400, 403, 404],
  },
  {
    method: 'post',
    path: '/webhooks/{id}/rotate-secret',
    summary: 'Rotate the signing secret',
    description:
      'The new secret (generated, or `secret` from the body) signs from now on; the old one also signs, as a second signature, for 24 h.',
    body: rotateSecretSchema,
    bodyOptional: true,
    responses: { 200: { description: 'The webhook with its new secret.', schema: webhookWithSecretSchema } },
    errors: [400, 403, 404, 413, 415],
  },
  {
    method: 'post',
    path: '/webhooks/{id}/filter-test',
    summary: 'Would this event be delivered to this webhook?',
    description:
      'The body is an event as a receiver gets it, {"type", "timestamp"?, "data"}; the answer says whether its type is one of event_types and whether the filter matches it (evaluated by PostgreSQL, as at delivery). Changes nothing.',
    query: tenantQuerySchema,
    body: filterTestSchema,
    responses: { 200: { description: 'Whether it matches.', schema: filterTestAnswerSchema } },
    errors: [400, 403, 404, 413, 415],
  },
  {
    method: 'post',
    path: '/webhooks/{id}/recover',
    summary: 'Send every failed or dead delivery of a webhook created since a time again',
    description:
      'For when the endpoint was down and is back: each `failed` or `dead` delivery created in [since, until) starts a new series, behind fresh traffic, in batches; dead ones leave the DLQ. Answers when every batch has committed. 409 when the webhook is disabled.',
    body: recoverSchema,
    responses: { 200: { description: 'How many were queued again.', schema: requeuedCountSchema } },
    errors: [400, 403, 404, 409, 413, 415],
  },
];
