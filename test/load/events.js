// k6 load test of POST /events against a deployed instance, at a constant arrival rate (open
// loop: k6 starts requests on schedule whether or not earlier ones have answered, so a slow
// service shows up as latency and dropped_iterations instead of as a quietly lower rate).
//
//   BASE_URL=https://hookrelay.example.com TOKEN=<tenant JWT> k6 run test/load/events.js
//   (or `npm run load-test`, which runs the same)
//
// Environment (k6 passes the shell's environment through; `-e NAME=value` works too):
//   BASE_URL        the service (default http://localhost:3000)
//   TOKEN           a tenant token, required, signed with the deployment's JWT_SECRET:
//                   `JWT_SECRET=… npm run --silent token -- --tenant ID --expires 2h`
//   RATE            events per second (default 1000); the tenant's max_events_per_sec must allow it
//   DURATION        how long to send (default 1m)
//   EVENT_TYPE      the event type sent (default loadtest.event)
//   WEBHOOK_URL     if set, setup() creates a webhook for EVENT_TYPE pointing here and teardown()
//                   deletes it; unset, only the tenant's existing webhooks receive the events
//   P99_MS          threshold for POST /events p99 in ms (default 25)
//   MAX_ERROR_RATE  threshold for the share of requests not answered 202 (default 0.01)
//   PRE_ALLOCATED_VUS, MAX_VUS  k6 virtual users kept ready / allowed (default RATE/10 and RATE)

/* global __ENV, __VU, __ITER, console -- k6's runtime globals */
import { check, fail } from 'k6';
import { b64decode } from 'k6/encoding';
import http from 'k6/http';
import { Rate, Trend } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://localhost:3000').replace(/\/+$/, '');
const TOKEN = __ENV.TOKEN || '';
const RATE = Number(__ENV.RATE || 1000);
const DURATION = __ENV.DURATION || '1m';
const EVENT_TYPE = __ENV.EVENT_TYPE || 'loadtest.event';
const WEBHOOK_URL = __ENV.WEBHOOK_URL || '';
const P99_MS = Number(__ENV.P99_MS || 25);
const MAX_ERROR_RATE = Number(__ENV.MAX_ERROR_RATE || 0.01);
const PRE_ALLOCATED_VUS = Number(__ENV.PRE_ALLOCATED_VUS || Math.max(10, Math.ceil(RATE / 10)));
const MAX_VUS = Number(__ENV.MAX_VUS || Math.max(PRE_ALLOCATED_VUS, RATE));

if (!TOKEN) {
  throw new Error(
    'TOKEN is required: TOKEN=$(JWT_SECRET=… npm run --silent token -- --tenant ID) (see test/load/events.js)',
  );
}

const postEventsDuration = new Trend('post_events_duration', true);
const postEventsErrors = new Rate('post_events_errors');

export const options = {
  scenarios: {
    events: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_ALLOCATED_VUS,
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    post_events_duration: [`p(99)<${P99_MS}`],
    post_events_errors: [`rate<${MAX_ERROR_RATE}`],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };

/** The token's tenant_id claim (the signature is the service's business, not ours). */
function tenantOf(token) {
  const part = token.split('.')[1];
  if (!part) fail('TOKEN is not a JWT');
  return JSON.parse(b64decode(part, 'rawurl', 's')).tenant_id;
}

export function setup() {
  const tenant = tenantOf(TOKEN);
  const quota = http.get(`${BASE_URL}/quotas/${encodeURIComponent(tenant)}`, { headers });
  if (quota.status !== 200) fail(`GET /quotas/${tenant} answered ${quota.status}: ${quota.body}`);
  const limit = quota.json('limits.max_events_per_sec');
  if (limit < RATE) {
    console.warn(
      `tenant ${tenant} may send ${limit} events/s, fewer than RATE=${RATE}: the rest will be 429. ` +
        `Raise it with PUT /quotas/${tenant} and an admin token, or sql/runbook/raise-tenant-quota.sql.`,
    );
  }
  if (!WEBHOOK_URL) return { webhookId: null };
  const created = http.post(
    `${BASE_URL}/webhooks`,
    JSON.stringify({ url: WEBHOOK_URL, event_types: [EVENT_TYPE], description: 'k6 load test' }),
    { headers },
  );
  if (created.status !== 201) fail(`POST /webhooks answered ${created.status}: ${created.body}`);
  return { webhookId: created.json('id') };
}

export default function () {
  const res = http.post(
    `${BASE_URL}/events`,
    JSON.stringify({ type: EVENT_TYPE, payload: { sent_at: Date.now(), vu: __VU, iteration: __ITER } }),
    { headers, tags: { name: 'POST /events' } },
  );
  const accepted = check(res, { 'POST /events answered 202': (r) => r.status === 202 });
  postEventsDuration.add(res.timings.duration);
  postEventsErrors.add(!accepted);
}

export function teardown(data) {
  if (!data.webhookId) return;
  const res = http.del(`${BASE_URL}/webhooks/${data.webhookId}`, null, { headers });
  check(res, { 'DELETE /webhooks/:id answered 204': (r) => r.status === 204 });
}
