/**
 * The portal's pages as functions of their data, returning escaped HTML (html.ts). Every form
 * posts with the session's CSRF token; nothing here writes a secret unless asked to show one.
 */
import { deliveryStatusSchema } from '../delivery/delivery-schemas.js';
import type { DeadLetterView } from '../dlq/dlq-service.js';
import type { QuotaLimits, QuotaUsage } from '../tenancy/quota-repository.js';
import type { WebhookView } from '../webhooks/webhook-service.js';
import { html, raw, type Html } from './html.js';
import type { EndpointHealth, EventLogRow, HourDuration, MinuteCount } from './portal-queries.js';

export interface PageContext {
  tenantId: string;
  csrf: string;
  /** Which navigation entry is current. */
  section: 'overview' | 'endpoints' | 'events' | 'dlq' | 'quotas' | '';
  notice?: string | undefined;
}

const NAV: [PageContext['section'], string, string][] = [
  ['overview', '/portal/', 'Overview'],
  ['endpoints', '/portal/endpoints', 'Endpoints'],
  ['events', '/portal/events', 'Event log'],
  ['dlq', '/portal/dlq', 'Dead letters'],
  ['quotas', '/portal/quotas', 'Quotas'],
];

export const csrfField = (page: PageContext): Html =>
  html`<input type="hidden" name="_csrf" value="${page.csrf}" />`;

/** A one-button form posting to `action` (CSRF token included). */
const button = (page: PageContext, action: string, label: string, kind = '', fields: Html | string = '') =>
  html`<form method="post" action="${action}">
    ${csrfField(page)}${fields}<button type="submit" class="${kind}">${label}</button>
  </form>`;

const when = (iso: string | Date | null | undefined): string =>
  iso === null || iso === undefined
    ? '—'
    : new Date(iso)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');

const status = (value: string): Html => html`<span class="status status-${value}">${value}</span>`;

/** The since/until inputs and the submit button every filter form ends with. */
function timeRangeFields(filter: { since: string; until: string }) {
  return html`<div>
      <label for="since">Since (UTC)</label
      ><input id="since" name="since" type="datetime-local" value="${filter.since}" />
    </div>
    <div>
      <label for="until">Until (UTC)</label
      ><input id="until" name="until" type="datetime-local" value="${filter.until}" />
    </div>
    <div><button type="submit">Filter</button></div>`;
}

export function layout(
  page: PageContext,
  title: string,
  body: Html,
  options: { refreshSeconds?: number } = {},
): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${options.refreshSeconds ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}" />` : ''}
        <title>${title} · hookrelay portal</title>
        <link rel="stylesheet" href="/portal/assets/portal.css" />
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <span class="brand">hookrelay · ${page.tenantId}</span>
          <nav aria-label="Portal">
            ${NAV.map(
              ([section, href, label]) =>
                html`<a href="${href}" ${page.section === section ? raw(' aria-current="page"') : ''}
                  >${label}</a
                >`,
            )}
          </nav>
          ${button(page, '/portal/sign-out', 'Sign out', 'secondary')}
        </header>
        <main id="main">
          ${page.notice ? html`<p class="notice" role="status">${page.notice}</p>` : ''} ${body}
        </main>
      </body>
    </html>`.text;
}

/** A page for someone without a session (a refused link, an ended session). */
export function signedOutPage(title: string, message: string): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · hookrelay portal</title>
        <link rel="stylesheet" href="/portal/assets/portal.css" />
      </head>
      <body>
        <main id="main">
          <h1>${title}</h1>
          <p class="error">${message}</p>
          <p>Ask for a new sign-in link: <code>POST /portal/sessions</code> with your API token.</p>
        </main>
      </body>
    </html>`.text;
}

export function errorPage(page: PageContext, statusCode: number, message: string, details: string[]): string {
  return layout(
    page,
    `Error ${statusCode}`,
    html`<h1>Something went wrong (${statusCode})</h1>
      <div class="error" role="alert">
        <p>${message}</p>
        ${
          details.length > 0
            ? html`<ul>
                ${details.map((d) => html`<li>${d}</li>`)}
              </ul>`
            : ''
        }
      </div>
      <p><a href="/portal/">Back to the overview</a></p>`,
  );
}

// ── Overview ──────────────────────────────────────────────────────────────────────────────

const CHART_W = 1440;
const CHART_H = 160;

/** Attempts per minute over the last 24 h as stacked bars (succeeded below, failed above). */
export function minuteChart(counts: MinuteCount[], now: Date): Html {
  const start = now.getTime() - 24 * 3600_000;
  const peak = Math.max(1, ...counts.map((c) => c.succeeded + c.failed));
  const bars = counts
    .map((c) => {
      const x = Math.floor((new Date(c.minute).getTime() - start) / 60_000);
      if (x < 0 || x >= CHART_W) return '';
      const ok = (c.succeeded / peak) * CHART_H;
      const bad = (c.failed / peak) * CHART_H;
      return (
        `<rect x="${x}" y="${(CHART_H - ok).toFixed(1)}" width="1.5" height="${ok.toFixed(1)}" fill="#188038"/>` +
        `<rect x="${x}" y="${(CHART_H - ok - bad).toFixed(1)}" width="1.5" height="${bad.toFixed(1)}" fill="#d93025"/>`
      );
    })
    .join('');
  const total = counts.reduce((n, c) => n + c.succeeded + c.failed, 0);
  return raw(
    `<svg class="chart" viewBox="0 0 ${CHART_W} ${CHART_H + 20}" role="img" aria-label="Delivery attempts per minute over the last 24 hours: ${total} in all, at most ${peak} in one minute">` +
      `<line x1="0" y1="${CHART_H}" x2="${CHART_W}" y2="${CHART_H}" stroke="#999"/>${bars}` +
      `<text x="0" y="${CHART_H + 16}" font-size="14" fill="#555">24 h ago</text>` +
      `<text x="${CHART_W}" y="${CHART_H + 16}" font-size="14" fill="#555" text-anchor="end">now</text>` +
      `<text x="4" y="14" font-size="14" fill="#555">${peak}/min</text></svg>`,
  );
}

/** p95 attempt duration per hour as a line. */
export function durationChart(hours: HourDuration[], now: Date): Html {
  const start = now.getTime() - 24 * 3600_000;
  const peak = Math.max(1, ...hours.map((h) => h.p95_ms));
  const points = hours.map((h) => {
    const x = ((new Date(h.hour).getTime() + 1_800_000 - start) / (24 * 3600_000)) * CHART_W;
    const y = CHART_H - (h.p95_ms / peak) * (CHART_H - 10);
    return `${Math.max(0, Math.min(CHART_W, x)).toFixed(1)},${y.toFixed(1)}`;
  });
  const dots = points.map((p) => {
    const [x, y] = p.split(',');
    return `<circle cx="${x}" cy="${y}" r="5" fill="#0b57d0"/>`;
  });
  return raw(
    `<svg class="chart" viewBox="0 0 ${CHART_W} ${CHART_H + 20}" role="img" aria-label="p95 attempt duration per hour over the last 24 hours, at most ${Math.round(peak)} ms">` +
      `<line x1="0" y1="${CHART_H}" x2="${CHART_W}" y2="${CHART_H}" stroke="#999"/>` +
      (points.length > 1
        ? `<polyline points="${points.join(' ')}" fill="none" stroke="#0b57d0" stroke-width="3"/>`
        : '') +
      dots.join('') +
      `<text x="4" y="14" font-size="14" fill="#555">${Math.round(peak)} ms</text>` +
      `<text x="0" y="${CHART_H + 16}" font-size="14" fill="#555">24 h ago</text>` +
      `<text x="${CHART_W}" y="${CHART_H + 16}" font-size="14" fill="#555" text-anchor="end">now</text></svg>`,
  );
}

export function overviewPage(
  page: PageContext,
  data: {
    counts: MinuteCount[];
    hours: HourDuration[];
    p95Ms: number | null;
    endpoints: number;
    dlq: number;
  },
): string {
  const now = new Date();
  const succeeded = data.counts.reduce((n, c) => n + c.succeeded, 0);
  const failed = data.counts.reduce((n, c) => n + c.failed, 0);
  return layout(
    page,
    'Overview',
    html`<h1>Overview</h1>
      <div class="kpis">
        <div class="kpi">Endpoints<b>${data.endpoints}</b></div>
        <div class="kpi">Attempts succeeded (24 h)<b>${succeeded}</b></div>
        <div class="kpi">Attempts failed (24 h)<b>${failed}</b></div>
        <div class="kpi">
          p95 attempt duration<b>${data.p95Ms === null ? '—' : `${Math.round(data.p95Ms)} ms`}</b>
        </div>
        <div class="kpi">
          Dead letters<b><a href="/portal/dlq">${data.dlq}</a></b>
        </div>
      </div>
      <section class="card" aria-labelledby="per-minute">
        <h2 id="per-minute">Deliveries per minute, last 24 h</h2>
        <p class="legend">
          <span class="swatch-ok">■ succeeded</span><span class="swatch-fail">■ failed</span>
        </p>
        ${minuteChart(data.counts, now)}
      </section>
      <section class="card" aria-labelledby="p95">
        <h2 id="p95">p95 attempt duration per hour, last 24 h</h2>
        ${durationChart(data.hours, now)}
      </section>`,
  );
}

// ── Endpoints ─────────────────────────────────────────────────────────────────────────────

const rate = (health: EndpointHealth | undefined): string =>
  !health || health.attempts === 0
    ? 'no attempts'
    : `${((health.successes / health.attempts) * 100).toFixed(1)}% of ${health.attempts}`;

const endpointFields = (webhook?: WebhookView): Html =>
  html` <label for="url">URL</label>
    <input
      id="url"
      name="url"
      type="url"
      required
      value="${webhook?.url ?? ''}"
      placeholder="https://example.com/webhooks"
    />
    <label for="event_types"
      >Event types
      <span class="muted"
        >(comma-separated: exact names, <code>prefix.*</code> or <code>*</code>)</span
      ></label
    >
    <input
      id="event_types"
      name="event_types"
      type="text"
      required
      value="${webhook ? webhook.event_types.join(', ') : '*'}"
    />
    <label for="description">Description</label>
    <input id="description" name="description" type="text" value="${webhook?.description ?? ''}" />`;

export function endpointsPage(
  page: PageContext,
  webhooks: WebhookView[],
  health: Map<string, EndpointHealth>,
): string {
  return layout(
    page,
    'Endpoints',
    html`<h1>Endpoints</h1>
      <section class="card">
        <table class="stack">
          <thead>
            <tr>
              <th>URL</th>
              <th>Event types</th>
              <th>State</th>
              <th>Success (24 h)</th>
              <th>Last attempt</th>
            </tr>
          </thead>
          <tbody>
            ${
              webhooks.length === 0
                ? html`<tr>
                    <td colspan="5">No endpoints yet: add one below.</td>
                  </tr>`
                : webhooks.map((w) => {
                    const h = health.get(w.id);
                    return html`<tr>
                      <td data-label="URL">
                        <a href="/portal/endpoints/${w.id}">${w.url}</a
                        >${w.description ? html`<br /><span class="muted">${w.description}</span>` : ''}
                      </td>
                      <td data-label="Event types"><code>${w.event_types.join(', ')}</code></td>
                      <td data-label="State">
                        ${w.enabled ? status('enabled') : html`${status('disabled')} <span class="muted">${w.disabled_reason ?? ''}</span>`}
                      </td>
                      <td data-label="Success (24 h)">${rate(h)}</td>
                      <td data-label="Last attempt">
                        ${when(h?.last_attempt_at)}${h?.last_status_code ? html` (${h.last_status_code})` : ''}
                      </td>
                    </tr>`;
                  })
            }
          </tbody>
        </table>
      </section>
      <section class="card" aria-labelledby="new-endpoint">
        <h2 id="new-endpoint">Add an endpoint</h2>
        <form method="post" action="/portal/endpoints">
          ${csrfField(page)}${endpointFields()}
          <p><button type="submit">Create endpoint</button></p>
        </form>
      </section>`,
  );
}

export interface RecentDelivery {
  id: string;
  event_id: string;
  status: string;
  attempt_count: number;
  last_error: string | null;
  created_at: Date;
}

export function endpointPage(
  page: PageContext,
  webhook: WebhookView,
  health: EndpointHealth | undefined,
  deliveries: RecentDelivery[],
  revealed?: string,
): string {
  const base = `/portal/endpoints/${webhook.id}`;
  return layout(
    page,
    'Endpoint',
    html`<h1>Endpoint</h1>
      <section class="card" aria-labelledby="state">
        <h2 id="state">${webhook.url}</h2>
        <p>
          ${webhook.enabled ? status('enabled') : html`${status('disabled')} ${webhook.disabled_reason ?? ''} <span class="muted">since ${when(webhook.disabled_at)}</span>`}
        </p>
        <p>
          Success over the last 24 h: <b>${rate(health)}</b>; last attempt
          ${when(health?.last_attempt_at)}${
            health?.last_error ? html` — <span class="muted">${health.last_error}</span>` : ''
          }
        </p>
        <p class="muted">
          Id <code>${webhook.id}</code> · signature
          ${webhook.signature_type}${
            webhook.previous_secret_expires_at
              ? html` · previous secret signs too until ${when(webhook.previous_secret_expires_at)}`
              : ''
          }
        </p>
        <div class="actions">
          ${button(page, `${base}/test`, 'Send a test event')}
          ${webhook.enabled ? button(page, `${base}/enabled`, 'Disable', 'secondary', html`<input type="hidden" name="enabled" value="false" />`) : button(page, `${base}/enabled`, 'Enable', 'secondary', html`<input type="hidden" name="enabled" value="true" />`)}
          ${button(page, `${base}/rotate`, 'Rotate secret', 'secondary')}
          ${button(page, `${base}/reveal`, 'Reveal secret', 'secondary')}
        </div>
        ${
          revealed !== undefined
            ? html`<p>
                <label for="secret"
                  >Signing ${webhook.signature_type === 'ed25519' ? 'public key' : 'secret'}</label
                ><code id="secret" class="secret">${revealed}</code>
              </p>`
            : ''
        }
      </section>
      <section class="card" aria-labelledby="edit">
        <h2 id="edit">Edit</h2>
        <form method="post" action="${base}">
          ${csrfField(page)}${endpointFields(webhook)}
          <p><button type="submit">Save changes</button></p>
        </form>
      </section>
      <section class="card" aria-labelledby="recent">
        <h2 id="recent">Recent deliveries</h2>
        ${deliveryTable(deliveries)}
      </section>`,
  );
}

function deliveryTable(deliveries: RecentDelivery[]): Html {
  if (deliveries.length === 0) return html`<p>None yet.</p>`;
  return html`<table class="stack">
    <thead>
      <tr>
        <th>Delivery</th>
        <th>Status</th>
        <th>Attempts</th>
        <th>Last error</th>
        <th>Created</th>
      </tr>
    </thead>
    <tbody>
      ${deliveries.map(
        (d) =>
          html`<tr>
            <td data-label="Delivery">
              <a href="/portal/deliveries/${d.id}"><code>${d.id.slice(0, 8)}</code></a>
            </td>
            <td data-label="Status">${status(d.status)}</td>
            <td data-label="Attempts">${d.attempt_count}</td>
            <td data-label="Last error">${d.last_error ?? ''}</td>
            <td data-label="Created">${when(d.created_at)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

// ── Events ────────────────────────────────────────────────────────────────────────────────

export const DELIVERY_STATUSES = deliveryStatusSchema.enum;

export function eventsPage(
  page: PageContext,
  events: EventLogRow[],
  filter: { type: string; status: string; since: string; until: string },
): string {
  return layout(
    page,
    'Event log',
    html`<h1>Event log</h1>
      <form method="get" action="/portal/events" class="card filters">
        <div>
          <label for="type">Type</label><input id="type" name="type" type="text" value="${filter.type}" />
        </div>
        <div>
          <label for="status">Delivery status</label
          ><select id="status" name="status">
            <option value="">any</option>
            ${DELIVERY_STATUSES.map(
              (s) => html`<option value="${s}" ${filter.status === s ? raw(' selected') : ''}>${s}</option>`,
            )}
          </select>
        </div>
        ${timeRangeFields(filter)}
      </form>
      <section class="card">
        <table class="stack">
          <thead>
            <tr>
              <th>Event</th>
              <th>Type</th>
              <th>Deliveries</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            ${
              events.length === 0
                ? html`<tr>
                    <td colspan="4">No events match.</td>
                  </tr>`
                : events.map(
                    (e) =>
                      html`<tr>
                        <td data-label="Event">
                          <a href="/portal/events/${e.id}"><code>${e.id.slice(0, 8)}</code></a>
                        </td>
                        <td data-label="Type"><code>${e.type}</code></td>
                        <td data-label="Deliveries">${e.statuses.map((s) => html`${status(s)} `)}</td>
                        <td data-label="Created">${when(e.created_at)}</td>
                      </tr>`,
                  )
            }
          </tbody>
        </table>
      </section>`,
  );
}

export interface EventDetail {
  id: string;
  type: string;
  created_at: string;
  payload: unknown;
  deliveries: {
    id: string;
    webhook_id: string;
    status: string;
    attempt_count: number;
    last_error: string | null;
  }[];
}

export function eventPage(page: PageContext, event: EventDetail): string {
  return layout(
    page,
    'Event',
    html`<h1>Event <code>${event.type}</code></h1>
      <section class="card">
        <p class="muted">Id <code>${event.id}</code> · ${when(event.created_at)}</p>
        <h2>Payload</h2>
        <pre>${JSON.stringify(event.payload, null, 2)}</pre>
      </section>
      <section class="card">
        <h2>Deliveries</h2>
        ${
          event.deliveries.length === 0
            ? html`<p>No endpoint subscribed to it.</p>`
            : html`<table class="stack">
                <thead>
                  <tr>
                    <th>Delivery</th>
                    <th>Endpoint</th>
                    <th>Status</th>
                    <th>Attempts</th>
                    <th>Last error</th>
                  </tr>
                </thead>
                <tbody>
                  ${event.deliveries.map(
                    (d) =>
                      html`<tr>
                        <td data-label="Delivery">
                          <a href="/portal/deliveries/${d.id}"><code>${d.id.slice(0, 8)}</code></a>
                        </td>
                        <td data-label="Endpoint">
                          <a href="/portal/endpoints/${d.webhook_id}"
                            ><code>${d.webhook_id.slice(0, 8)}</code></a
                          >
                        </td>
                        <td data-label="Status">${status(d.status)}</td>
                        <td data-label="Attempts">${d.attempt_count}</td>
                        <td data-label="Last error">${d.last_error ?? ''}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>`,
  );
}

// ── Delivery ──────────────────────────────────────────────────────────────────────────────

export interface DeliveryDetail {
  id: string;
  event_id: string;
  webhook_id: string;
  status: string;
  next_attempt_at: string | null;
  attempts: {
    attempt_number: number;
    attempted_at: string;
    status_code: number | null;
    error: string | null;
    duration_ms: number;
    response_body: string | null;
  }[];
}

/** Still moving: the page refreshes itself (a meta refresh; the CSP allows no script). */
export const isSettled = (statusValue: string): boolean =>
  ['succeeded', 'dead', 'paused'].includes(statusValue);

export function deliveryPage(page: PageContext, delivery: DeliveryDetail): string {
  const settled = isSettled(delivery.status);
  return layout(
    page,
    'Delivery',
    html`<h1>Delivery ${status(delivery.status)}</h1>
      <section class="card">
        <p class="muted">
          Id <code>${delivery.id}</code> · event
          <a href="/portal/events/${delivery.event_id}"><code>${delivery.event_id.slice(0, 8)}</code></a> ·
          endpoint
          <a href="/portal/endpoints/${delivery.webhook_id}"
            ><code>${delivery.webhook_id.slice(0, 8)}</code></a
          >
        </p>
        ${settled ? '' : html`<p role="status">In progress${delivery.next_attempt_at ? html`; next attempt ${when(delivery.next_attempt_at)}` : ''} — this page refreshes itself.</p>`}
        <div class="actions">
          ${settled || delivery.status === 'failed' ? button(page, `/portal/deliveries/${delivery.id}/retry`, 'Retry now') : ''}
        </div>
      </section>
      <section class="card">
        <h2>Attempts</h2>
        ${
          delivery.attempts.length === 0
            ? html`<p>No attempt yet.</p>`
            : html`<table class="stack attempts">
                <thead>
                  <tr>
                    <th>#</th>
                    <th>Time</th>
                    <th>Status code</th>
                    <th>Duration</th>
                    <th>Error</th>
                    <th>Response body</th>
                  </tr>
                </thead>
                <tbody>
                  ${delivery.attempts.map(
                    (a) =>
                      html`<tr>
                        <td data-label="#">${a.attempt_number}</td>
                        <td data-label="Time">${when(a.attempted_at)}</td>
                        <td data-label="Status code">${a.status_code ?? '—'}</td>
                        <td data-label="Duration">${a.duration_ms} ms</td>
                        <td data-label="Error">
                          ${a.error ?? html`<span class="status status-succeeded">ok</span>`}
                        </td>
                        <td data-label="Response body"><pre>${a.response_body ?? ''}</pre></td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>`,
    settled ? {} : { refreshSeconds: 1 },
  );
}

// ── Dead letters ──────────────────────────────────────────────────────────────────────────

export function dlqPage(
  page: PageContext,
  entries: DeadLetterView[],
  total: number,
  webhooks: WebhookView[],
  filter: { webhook_id: string; since: string; until: string },
): string {
  return layout(
    page,
    'Dead letters',
    html`<h1>Dead letters <span class="muted">(${total})</span></h1>
      <form method="get" action="/portal/dlq" class="card filters">
        <div>
          <label for="webhook_id">Endpoint</label
          ><select id="webhook_id" name="webhook_id">
            <option value="">any</option>
            ${webhooks.map(
              (w) =>
                html`<option value="${w.id}" ${filter.webhook_id === w.id ? raw(' selected') : ''}>
                  ${w.url}
                </option>`,
            )}
          </select>
        </div>
        ${timeRangeFields(filter)}
      </form>
      ${
        filter.webhook_id
          ? html`<div class="card actions">
              ${button(page, '/portal/dlq/retry', 'Replay all of this endpoint', '', html`<input type="hidden" name="webhook_id" value="${filter.webhook_id}" />`)}
            </div>`
          : ''
      }
      <section class="card">
        <table class="stack">
          <thead>
            <tr>
              <th>Delivery</th>
              <th>Endpoint</th>
              <th>Last error</th>
              <th>Attempts</th>
              <th>Dead since</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            ${
              entries.length === 0
                ? html`<tr>
                    <td colspan="6">No dead letters.</td>
                  </tr>`
                : entries.map(
                    (e) =>
                      html`<tr>
                        <td data-label="Delivery">
                          <a href="/portal/deliveries/${e.delivery_id}"
                            ><code>${e.delivery_id.slice(0, 8)}</code></a
                          >
                        </td>
                        <td data-label="Endpoint">
                          <a href="/portal/dlq?webhook_id=${e.webhook_id}"
                            ><code>${e.webhook_id.slice(0, 8)}</code></a
                          >
                        </td>
                        <td data-label="Last error">${e.last_error}</td>
                        <td data-label="Attempts">${e.attempts}</td>
                        <td data-label="Dead since">${when(e.created_at)}</td>
                        <td data-label="Actions">
                          <div class="actions">
                            ${button(page, `/portal/dlq/${e.delivery_id}/retry`, 'Replay')}${button(page, `/portal/dlq/${e.delivery_id}/delete`, 'Delete', 'danger')}
                          </div>
                        </td>
                      </tr>`,
                  )
            }
          </tbody>
        </table>
      </section>`,
  );
}

// ── Quotas ────────────────────────────────────────────────────────────────────────────────

export function quotasPage(page: PageContext, limits: QuotaLimits, usage: QuotaUsage): string {
  const row = (label: string, used: number, limit: number, unit: string) => {
    const share = Math.min(100, (used / Math.max(1, limit)) * 100);
    return html`<tr>
      <td data-label="Limit">${label}</td>
      <td data-label="In use">${used}</td>
      <td data-label="Maximum">${limit} ${unit}</td>
      <td data-label="Share">
        <meter min="0" max="100" value="${share.toFixed(0)}" aria-label="${label}: ${share.toFixed(0)}%">
          ${share.toFixed(0)}%
        </meter>
      </td>
    </tr>`;
  };
  return layout(
    page,
    'Quotas',
    html`<h1>Quotas</h1>
      <section class="card">
        <table class="stack">
          <thead>
            <tr>
              <th>Limit</th>
              <th>In use</th>
              <th>Maximum</th>
              <th>Share</th>
            </tr>
          </thead>
          <tbody>
            ${row('Events per second', usage.events_sent, limits.max_events_per_sec, 'per second')}
            ${row('Concurrent deliveries', usage.concurrent_deliveries, limits.max_concurrent_deliveries, 'at once')}
            ${row('Dead letters', usage.dlq_count, limits.max_dlq_size, 'entries')}
          </tbody>
        </table>
        <p class="muted">Limits are changed by an operator (<code>PUT /quotas/${page.tenantId}</code>).</p>
      </section>`,
  );
}
