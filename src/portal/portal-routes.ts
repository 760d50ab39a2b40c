/**
 * The tenant portal's pages under /portal/: sign-in by one-time link, then server-rendered HTML
 * for one tenant, with plain forms. Mounted before the bearer-token routes (its own cookie
 * session). Every change goes through the features' services with a Caller built from the
 * session (`via: 'portal'`, so the audit log says where it came from).
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import getRawBody from 'raw-body';
import { writeAudit, byCaller } from '../audit/audit-repository.js';
import { createDeliveryService } from '../delivery/delivery-service.js';
import type { DirectDispatch } from '../delivery/deliver-batch.js';
import type { DeliveryStatus } from '../delivery/delivery.table.js';
import { createDlqService } from '../dlq/dlq-service.js';
import { AppError, notFound } from '../errors.js';
import { createEventService } from '../events/event-service.js';
import { createIngestionService } from '../events/ingestion-service.js';
import type { RouteDeps } from '../http/deps.js';
import { bodyValidator, uuidParam } from '../http/validation.js';
import { isRevoked, type Caller } from '../tenancy/caller.js';
import { dlqCount, quotaWithUsage } from '../tenancy/quota-repository.js';
import type { TokenRevocations } from '../tenancy/token-revocations.js';
import {
  createWebhookSchema,
  updateWebhookSchema,
  type CreateWebhookBody,
  type UpdateWebhookBody,
} from '../webhooks/webhook-schemas.js';
import { createWebhookService } from '../webhooks/webhook-service.js';
import { consumePortalLink } from './portal-links.js';
import {
  attemptDurations,
  attemptsPerMinute,
  deliveryOfEventTo,
  endpointHealth,
  eventLog,
  recentDeliveries,
} from './portal-queries.js';
import { PORTAL_CSS } from './portal-assets.js';
import {
  SESSION_COOKIE,
  SESSION_TTL_SECONDS,
  cookieValue,
  csrfToken,
  csrfTokenMatches,
  sessionCookie,
  signSession,
  verifySession,
  type PortalSession,
} from './portal-session.js';
import {
  DELIVERY_STATUSES,
  deliveryPage,
  dlqPage,
  endpointPage,
  endpointsPage,
  errorPage,
  eventPage,
  eventsPage,
  overviewPage,
  quotasPage,
  signedOutPage,
  type PageContext,
} from './portal-views.js';

const validateCreate = bodyValidator<CreateWebhookBody>(createWebhookSchema);
const validateUpdate = bodyValidator<UpdateWebhookBody>(updateWebhookSchema);
const FORM_LIMIT_BYTES = 64 * 1024;

/** The headers every portal answer carries: no script, nothing from elsewhere, no framing unless allowed. */
export function portalHeaders(frameAncestors: readonly string[]): Record<string, string> {
  const ancestors = frameAncestors.length > 0 ? frameAncestors.join(' ') : "'none'";
  return {
    'Content-Security-Policy': `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors ${ancestors}`,
    ...(frameAncestors.length === 0 ? { 'X-Frame-Options': 'DENY' } : {}),
    'X-Content-Type-Options': 'nosniff',
    // Not no-referrer: with it, Chromium sends `Origin: null` on the portal's own form posts.
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  };
}

const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (/^127\./.test(address) || address === '::1' || address === '::ffff:127.0.0.1');

/** `application/x-www-form-urlencoded` fields; a repeated field keeps its last value. */
async function formOf(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new AppError(
      'unsupported_media_type',
      'Portal forms are sent as application/x-www-form-urlencoded.',
    );
  }
  const text = await getRawBody(ctx.req, { limit: FORM_LIMIT_BYTES, encoding: 'utf8' }).catch(
    (err: unknown) => {
      throw new AppError('payload_too_large', 'The form is too large.', { cause: err });
    },
  );
  return Object.fromEntries(new URLSearchParams(text));
}

const eventTypesOf = (text: string | undefined): string[] =>
  (text ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');

/** An event type the webhook subscribes to, for its test event. */
export function testEventTypeFor(eventTypes: readonly string[]): string {
  const exact = eventTypes.find((t) => !t.endsWith('*'));
  if (exact !== undefined) return exact;
  const prefix = eventTypes.find((t) => t.endsWith('.*'));
  return prefix !== undefined ? `${prefix.slice(0, -1)}test` : 'portal.test';
}

/** `datetime-local` (read as UTC) or ISO text → Date; empty → undefined; nonsense → 400. */
function timeParam(value: unknown, field: string): Date | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  if (Number.isNaN(date.getTime())) {
    throw new AppError('invalid_request', `${field} is not a time.`, {
      details: [{ field: `/${field}`, message: 'must be a date and time' }],
    });
  }
  return date;
}

const textParam = (value: unknown): string => (typeof value === 'string' ? value : '');

interface PortalState {
  session: PortalSession;
  caller: Caller;
  page: PageContext;
}

export function portalRoutes(
  deps: RouteDeps & { dispatch?: DirectDispatch; tokenRevocations?: TokenRevocations },
): Router {
  const { db, config } = deps;
  const jwtSecret = deps.jwtSecrets[0]!;
  const webhooks = createWebhookService(deps);
  const deliveries = createDeliveryService(deps);
  const dlq = createDlqService(deps);
  const events = createEventService(deps);
  const ingestion = createIngestionService(deps);
  const headers = portalHeaders(config.portalFrameAncestors);
  const router = new Router({ prefix: '/portal' });

  const stateOf = (ctx: Context): PortalState => ctx.state.portal as PortalState;

  const sendPage = (ctx: Context, body: string, statusCode = 200): void => {
    ctx.status = statusCode;
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = body;
  };

  // Headers on every answer, and errors as pages rather than JSON.
  router.use(async (ctx, next) => {
    ctx.set(headers);
    try {
      await next();
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const state = ctx.state.portal as PortalState | undefined;
      const details = (err.details ?? []).map((d) => `${d.field}: ${d.message}`);
      sendPage(
        ctx,
        state ? errorPage(state.page, err.status, err.message, details) : signedOutPage('Error', err.message),
        err.status,
      );
    }
  });

  router.get('/assets/portal.css', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'text/css; charset=utf-8';
    ctx.body = PORTAL_CSS;
  });

  router.get('/sign-in/:token', async (ctx) => {
    const tenantId = await consumePortalLink(db, ctx.params.token ?? '');
    if (tenantId === undefined) {
      sendPage(
        ctx,
        signedOutPage(
          'Link refused',
          'This sign-in link has been used already, has expired, or never existed.',
        ),
        401,
      );
      return;
    }
    const secure = !(ctx.protocol === 'http' && isLoopback(ctx.req.socket.remoteAddress));
    const value = await signSession(jwtSecret, tenantId);
    ctx.append('Set-Cookie', sessionCookie(value, { secure, maxAgeSeconds: SESSION_TTL_SECONDS }));
    ctx.redirect('/portal/');
  });

  // Everything past here needs a session; a change needs its CSRF token and a same-origin request.
  const requireSession: Middleware = async (ctx, next) => {
    const session = await verifySession(deps.jwtSecrets, cookieValue(ctx.get('cookie'), SESSION_COOKIE));
    if (!session || isRevoked(session.issuedAt, deps.tokenRevocations?.validAfter(session.tenantId))) {
      sendPage(ctx, signedOutPage('Signed out', 'There is no portal session here, or it has ended.'), 401);
      return;
    }
    const caller: Caller = {
      principal: { tenantId: session.tenantId, role: 'tenant' },
      requestId: ctx.state.requestId as string,
      via: 'portal',
    };
    const state: PortalState = {
      session,
      caller,
      page: { tenantId: session.tenantId, csrf: csrfToken(jwtSecret, session), section: '' },
    };
    ctx.state.portal = state;
    if (ctx.method === 'POST') {
      const origin = ctx.get('origin');
      const site = ctx.get('sec-fetch-site');
      const form = await formOf(ctx);
      if (
        (origin !== '' && origin !== `${ctx.protocol}://${ctx.host}`) ||
        (site !== '' && site !== 'same-origin' && site !== 'none') ||
        !csrfTokenMatches(jwtSecret, session, form._csrf)
      ) {
        throw new AppError('forbidden', 'The form was not sent from this portal (CSRF check failed).');
      }
      ctx.state.form = form;
    }
    await next();
  };
  router.use(requireSession);

  const formOfCtx = (ctx: Context): Record<string, string> => ctx.state.form as Record<string, string>;
  const notice = (ctx: Context): string | undefined => {
    const done = ctx.query.done;
    const notices: Record<string, string> = {
      created: 'Endpoint created.',
      saved: 'Changes saved.',
      enabled: 'Endpoint enabled: paused deliveries resume.',
      disabled: 'Endpoint disabled: its deliveries wait as paused.',
      rotated: 'Secret rotated. The previous one keeps signing alongside for a while.',
      replayed: 'Sent again: a fresh series of attempts started.',
      deleted: 'Dead letter deleted.',
    };
    return typeof done === 'string' ? notices[done] : undefined;
  };
  const pageOf = (ctx: Context, section: PageContext['section']): PageContext => ({
    ...stateOf(ctx).page,
    section,
    notice: notice(ctx),
  });

  router.post('/sign-out', (ctx) => {
    const secure = !(ctx.protocol === 'http' && isLoopback(ctx.req.socket.remoteAddress));
    ctx.append('Set-Cookie', sessionCookie('', { secure, maxAgeSeconds: 0 }));
    sendPage(ctx, signedOutPage('Signed out', 'You have signed out of the portal.'));
  });

  router.get('/', async (ctx) => {
    const { tenantId } = stateOf(ctx).session;
    const [counts, durations, list, dead] = await Promise.all([
      attemptsPerMinute(db, tenantId),
      attemptDurations(db, tenantId),
      webhooks.list(stateOf(ctx).caller, { limit: 1, offset: 0 }),
      dlqCount(db, tenantId),
    ]);
    sendPage(
      ctx,
      overviewPage(pageOf(ctx, 'overview'), {
        counts,
        hours: durations.hours,
        p95Ms: durations.p95Ms,
        endpoints: list.total,
        dlq: dead,
      }),
    );
  });

  // ── Endpoints ──
  router.get('/endpoints', async (ctx) => {
    const { caller, session } = stateOf(ctx);
    const [list, health] = await Promise.all([
      webhooks.list(caller, { limit: 500, offset: 0 }),
      endpointHealth(db, session.tenantId),
    ]);
    sendPage(ctx, endpointsPage(pageOf(ctx, 'endpoints'), list.entries, health));
  });

  router.post('/endpoints', async (ctx) => {
    const form = formOfCtx(ctx);
    const body = validateCreate({
      url: form.url ?? '',
      event_types: eventTypesOf(form.event_types),
      ...(form.description ? { description: form.description } : {}),
    });
    const created = await webhooks.create(stateOf(ctx).caller, body);
    ctx.redirect(`/portal/endpoints/${created.id}?done=created`);
  });

  const showEndpoint = async (ctx: Context, revealed?: string): Promise<void> => {
    const { caller, session } = stateOf(ctx);
    const id = uuidParam(ctx.params.id, 'Webhook');
    const webhook = await webhooks.get(caller, id);
    const [health, recent] = await Promise.all([
      endpointHealth(db, session.tenantId),
      recentDeliveries(db, session.tenantId, id, 20),
    ]);
    sendPage(ctx, endpointPage(pageOf(ctx, 'endpoints'), webhook, health.get(id), recent, revealed));
  };

  router.get('/endpoints/:id', (ctx) => showEndpoint(ctx));

  router.post('/endpoints/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Webhook');
    const form = formOfCtx(ctx);
    const body = validateUpdate({
      url: form.url ?? '',
      event_types: eventTypesOf(form.event_types),
      description: form.description ? form.description : null,
    });
    await webhooks.update(stateOf(ctx).caller, id, body);
    ctx.redirect(`/portal/endpoints/${id}?done=saved`);
  });

  router.post('/endpoints/:id/enabled', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Webhook');
    const enabled = formOfCtx(ctx).enabled === 'true';
    await webhooks.update(stateOf(ctx).caller, id, { enabled });
    ctx.redirect(`/portal/endpoints/${id}?done=${enabled ? 'enabled' : 'disabled'}`);
  });

  router.post('/endpoints/:id/rotate', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Webhook');
    await webhooks.rotateSecret(stateOf(ctx).caller, id, {});
    ctx.redirect(`/portal/endpoints/${id}?done=rotated`);
  });

  // A POST, so the secret is shown in an answer that is neither cached nor in any URL.
  router.post('/endpoints/:id/reveal', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Webhook');
    const secret = await webhooks.getSecret(stateOf(ctx).caller, id);
    await showEndpoint(ctx, 'secret' in secret ? secret.secret : secret.public_key);
  });

  router.post('/endpoints/:id/test', async (ctx) => {
    const { caller, session } = stateOf(ctx);
    const id = uuidParam(ctx.params.id, 'Webhook');
    const webhook = await webhooks.get(caller, id);
    const type = testEventTypeFor(webhook.event_types);
    const sent = await ingestion.ingest({
      tenantId: session.tenantId,
      type,
      payload: { test: true, sent_from: 'portal', webhook_id: id, at: new Date().toISOString() },
    });
    await writeAudit(
      db,
      byCaller(caller, {
        action: 'event.test_sent',
        objectType: 'webhook',
        objectId: id,
        tenantId: session.tenantId,
        details: { event_id: sent.event_id, type },
      }),
    );
    const deliveryId = await deliveryOfEventTo(db, sent.event_id, id);
    // A filter or a disabled endpoint can leave it without a delivery: show the event then.
    ctx.redirect(deliveryId ? `/portal/deliveries/${deliveryId}` : `/portal/events/${sent.event_id}`);
  });

  // ── Events ──
  router.get('/events', async (ctx) => {
    const { session } = stateOf(ctx);
    const filter = {
      type: textParam(ctx.query.type),
      status: textParam(ctx.query.status),
      since: textParam(ctx.query.since),
      until: textParam(ctx.query.until),
    };
    const statusFilter = (DELIVERY_STATUSES as readonly string[]).includes(filter.status)
      ? (filter.status as DeliveryStatus)
      : undefined;
    const rows = await eventLog(db, session.tenantId, {
      type: filter.type || undefined,
      status: statusFilter,
      since: timeParam(filter.since, 'since'),
      until: timeParam(filter.until, 'until'),
      limit: 100,
    });
    sendPage(ctx, eventsPage(pageOf(ctx, 'events'), rows, filter));
  });

  router.get('/events/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Event');
    const event = await events.get(stateOf(ctx).caller.principal, id);
    sendPage(ctx, eventPage(pageOf(ctx, 'events'), event));
  });

  // ── Deliveries ──
  router.get('/deliveries/:id', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    const delivery = await deliveries.get(stateOf(ctx).caller.principal, id);
    sendPage(ctx, deliveryPage(pageOf(ctx, 'events'), delivery));
  });

  router.post('/deliveries/:id/retry', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Delivery');
    await deliveries.resend(stateOf(ctx).caller, id);
    ctx.redirect(`/portal/deliveries/${id}`);
  });

  // ── Dead letters ──
  router.get('/dlq', async (ctx) => {
    const { caller } = stateOf(ctx);
    const filter = {
      webhook_id: textParam(ctx.query.webhook_id),
      since: textParam(ctx.query.since),
      until: textParam(ctx.query.until),
    };
    const webhookId = filter.webhook_id ? uuidParam(filter.webhook_id, 'Webhook') : undefined;
    const since = timeParam(filter.since, 'since');
    const until = timeParam(filter.until, 'until');
    const [list, endpoints] = await Promise.all([
      dlq.list(caller, {
        limit: 200,
        offset: 0,
        ...(webhookId ? { webhook_id: webhookId } : {}),
        ...(since ? { since: since.toISOString() } : {}),
        ...(until ? { until: until.toISOString() } : {}),
      }),
      webhooks.list(caller, { limit: 500, offset: 0 }),
    ]);
    sendPage(ctx, dlqPage(pageOf(ctx, 'dlq'), list.entries, list.total, endpoints.entries, filter));
  });

  router.post('/dlq/retry', async (ctx) => {
    const webhookId = uuidParam(formOfCtx(ctx).webhook_id, 'Webhook');
    // Only the tenant's own webhook: another's id is a 404, as it is everywhere else.
    await webhooks.get(stateOf(ctx).caller, webhookId);
    await dlq.retryAll(stateOf(ctx).caller, { webhook_id: webhookId });
    ctx.redirect(`/portal/dlq?webhook_id=${webhookId}&done=replayed`);
  });

  router.post('/dlq/:id/retry', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Dead-letter entry');
    await dlq.retry(stateOf(ctx).caller, id);
    ctx.redirect(`/portal/deliveries/${id}`);
  });

  router.post('/dlq/:id/delete', async (ctx) => {
    const id = uuidParam(ctx.params.id, 'Dead-letter entry');
    await dlq.remove(stateOf(ctx).caller, id);
    ctx.redirect('/portal/dlq?done=deleted');
  });

  // ── Quotas ──
  router.get('/quotas', async (ctx) => {
    const { tenantId } = stateOf(ctx).session;
    const quota = await quotaWithUsage(db, tenantId);
    if (!quota) throw notFound('Tenant');
    sendPage(ctx, quotasPage(pageOf(ctx, 'quotas'), quota.limits, quota.usage));
  });

  // Anything else under /portal/ is a page that does not exist.
  router.all('/*rest', () => {
    throw notFound('Page');
  });

  return router;
}
