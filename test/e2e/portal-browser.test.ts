/**
 * The portal in a real headless Chromium (Debian's `chromium`, driven by playwright-core; CI's
 * scripts/ci-tools.sh installs it): sign in by link, create an endpoint pointing at a local
 * receiver, send a test event and watch it succeed, make the receiver fail until the delivery
 * is dead, replay it from the dead letters once the receiver is fixed, rotate the secret and
 * verify the next delivery with the new one. Screenshots of each page go to test-output/portal/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiverPool, type Receiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve(import.meta.dirname, '../../test-output/portal');
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let svc: TestService;
let browser: Browser;
let page: Page;
let receiver: Receiver;
let failing = false;
const receivers = receiverPool();

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/ci-tools.sh does)`);
  }
  fs.mkdirSync(SHOTS, { recursive: true });
  svc = await startTestService({ RETRY_SCHEDULE: '0.05,0.05' });
  receiver = await receivers.start({
    behaviour: () =>
      failing
        ? { kind: 'status', status: 503, body: 'down for maintenance' }
        : { kind: 'status', status: 200, body: 'thanks' },
  });
  // Playwright gives each launch a new, empty profile directory of its own.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(10_000);
});

afterAll(async () => {
  await browser?.close();
  await receivers.closeAll();
  await svc?.stop();
});

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** Waits, through the page's own refreshes, for the delivery to reach `status`. */
async function deliveryReaches(status: string): Promise<void> {
  await page.locator(`h1 .status-${status}`).waitFor({ timeout: 20_000 });
}

describe('the portal in Chromium', () => {
  let endpointUrl = '';

  it('signs in by link and lands on the overview, without the token in the URL', async () => {
    const res = await svc.call('POST', '/portal/sessions', { token: await svc.token('acme'), body: {} });
    expect(res.status).toBe(201);
    await page.goto(res.body.url);
    expect(new URL(page.url()).pathname).toBe('/portal/');
    await expect(page.locator('h1').textContent()).resolves.toBe('Overview');
    expect(await page.evaluate<number>('Object.keys(localStorage).length')).toBe(0);
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.textContent')).toBe(
      'Skip to content',
    );
    await shot('01-overview-empty');
  });

  it('creates an endpoint pointing at a local receiver, then sends a test event and sees it succeed with its attempt', async () => {
    await page.getByRole('link', { name: 'Endpoints' }).click();
    await page.getByLabel('URL').fill(receiver.url);
    await page.getByLabel(/^Event types/).fill('order.*');
    await page.getByLabel('Description').fill('Orders to the local receiver');
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await expect(page.locator('.notice').textContent()).resolves.toContain('Endpoint created');
    endpointUrl = page.url();
    await shot('02-endpoint');

    await page.getByRole('button', { name: 'Send a test event' }).click();
    await deliveryReaches('succeeded');
    const attempts = page.locator('table.attempts tbody tr');
    await expect(attempts.count()).resolves.toBe(1);
    await expect(attempts.first().textContent()).resolves.toContain('200');
    await expect(attempts.first().textContent()).resolves.toContain('thanks');
    expect(JSON.parse(receiver.requests.at(-1)!.body).type).toBe('order.test');
    await shot('03-delivery-succeeded');
  });

  it('a delivery the receiver keeps failing goes dead and shows in dead letters; fixed, a replay from the page delivers it', async () => {
    failing = true;
    await page.goto(endpointUrl);
    await page.getByRole('button', { name: 'Send a test event' }).click();
    await deliveryReaches('dead');
    await expect(page.locator('table.attempts tbody tr').count()).resolves.toBe(3);
    await shot('04-delivery-dead');

    await page.getByRole('link', { name: 'Dead letters' }).click();
    const rows = page.locator('main table tbody tr');
    await expect(rows.count()).resolves.toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('HTTP 503');
    await shot('05-dead-letters');

    failing = false;
    await rows.first().getByRole('button', { name: 'Replay' }).click();
    await deliveryReaches('succeeded');
    await page.getByRole('link', { name: 'Dead letters' }).click();
    await expect(page.locator('main table tbody').textContent()).resolves.toContain('No dead letters');
  });

  it('rotates the secret and the next delivery verifies with the new one', async () => {
    await page.goto(endpointUrl);
    expect(await page.locator('#secret').count()).toBe(0);
    await page.getByRole('button', { name: 'Reveal secret' }).click();
    const before = (await page.locator('#secret').textContent())!;
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await expect(page.locator('.notice').textContent()).resolves.toContain('Secret rotated');
    await page.getByRole('button', { name: 'Reveal secret' }).click();
    const after = (await page.locator('#secret').textContent())!;
    expect(after).toMatch(/^whsec_/);
    expect(after).not.toBe(before);
    await shot('06-secret-revealed');

    const seen = receiver.requests.length;
    await page.getByRole('button', { name: 'Send a test event' }).click();
    await deliveryReaches('succeeded');
    const request = receiver.requests[seen]!;
    const headers = {
      'webhook-id': String(request.headers['webhook-id']),
      'webhook-timestamp': String(request.headers['webhook-timestamp']),
      // Only the signature made with the new secret: during the rotation both are sent.
      'webhook-signature': String(request.headers['webhook-signature']),
    };
    expect(() => new Webhook(after).verify(request.body, headers)).not.toThrow();
  });

  it('shows the event log, an event with its payload, the overview charts and the quotas, on a desktop and at 375 px', async () => {
    await page.getByRole('link', { name: 'Event log' }).click();
    // The three test events, and the service's own: the dead delivery and the rotation.
    await expect(page.locator('main table tbody tr').count()).resolves.toBe(5);
    await expect(page.locator('main table tbody').textContent()).resolves.toContain(
      'hookrelay.delivery.dead',
    );
    await shot('07-event-log');
    await page.locator('main table tbody tr a').first().click();
    await expect(page.locator('pre').first().textContent()).resolves.toContain('"sent_from": "portal"');
    await shot('08-event');
    await page.getByRole('link', { name: 'Overview' }).click();
    await expect(page.locator('svg.chart').count()).resolves.toBe(2);
    await shot('09-overview');
    await page.getByRole('link', { name: 'Quotas' }).click();
    await expect(page.locator('main').textContent()).resolves.toContain('Events per second');
    await shot('10-quotas');

    await page.setViewportSize({ width: 375, height: 800 });
    for (const [name, link] of [
      ['11-mobile-endpoints', 'Endpoints'],
      ['12-mobile-overview', 'Overview'],
    ] as const) {
      await page.getByRole('link', { name: link }).click();
      const overflow = await page.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(overflow, name).toBeLessThanOrEqual(0);
      await shot(name);
    }
  });
});
