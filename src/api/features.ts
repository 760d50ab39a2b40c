/**
 * The API's features: each one's routes and the operations the OpenAPI document describes for
 * them. The one list the app mounts, the document is built from, and the tests walk.
 */
import type Router from '@koa/router';
import { auditOperations } from '../audit/audit-openapi.js';
import { auditRoutes } from '../audit/audit-routes.js';
import type { DirectDispatch } from '../delivery/deliver-batch.js';
import { deliveryOperations } from '../delivery/delivery-openapi.js';
import { deliveryRoutes } from '../delivery/delivery-routes.js';
import { dlqOperations } from '../dlq/dlq-openapi.js';
import { dlqRoutes } from '../dlq/dlq-routes.js';
import { eventOperations } from '../events/event-openapi.js';
import { eventRoutes } from '../events/event-routes.js';
import { eventTypeOperations } from '../event-types/event-type-openapi.js';
import { eventTypeRoutes } from '../event-types/event-type-routes.js';
import type { RouteDeps } from '../http/deps.js';
import type { Operation } from '../http/operation.js';
import { portalSessionOperations } from '../portal/portal-session-openapi.js';
import { portalSessionRoutes } from '../portal/portal-session-routes.js';
import { quotaOperations } from '../tenancy/quota-openapi.js';
import { quotaRoutes } from '../tenancy/quota-routes.js';
import { tenantOperations } from '../tenancy/tenant-openapi.js';
import { tenantRoutes } from '../tenancy/tenant-routes.js';
import type { TokenRevocations } from '../tenancy/token-revocations.js';
import { webhookOperations } from '../webhooks/webhook-openapi.js';
import { webhookRoutes } from '../webhooks/webhook-routes.js';

/** What the composition root hands the app. */
export interface AppDeps extends RouteDeps {
  /** The delivery engine of this process (ROLE=all), which takes new deliveries directly. */
  dispatch?: DirectDispatch;
  /** Each tenant's token revocation time, refreshed from the database (checked on every request). */
  tokenRevocations?: TokenRevocations;
}

export interface Feature {
  name: string;
  routes(deps: AppDeps): Router;
  operations: readonly Operation[];
}

/** Every authenticated feature, in the order the OpenAPI document lists them. */
export const features: readonly Feature[] = [
  { name: 'webhooks', routes: webhookRoutes, operations: webhookOperations },
  { name: 'events', routes: eventRoutes, operations: eventOperations },
  { name: 'event types', routes: eventTypeRoutes, operations: eventTypeOperations },
  { name: 'deliveries', routes: deliveryRoutes, operations: deliveryOperations },
  { name: 'dlq', routes: dlqRoutes, operations: dlqOperations },
  { name: 'quotas', routes: quotaRoutes, operations: quotaOperations },
  { name: 'audit log', routes: auditRoutes, operations: auditOperations },
  { name: 'tenants', routes: tenantRoutes, operations: tenantOperations },
  { name: 'portal', routes: portalSessionRoutes, operations: portalSessionOperations },
];
