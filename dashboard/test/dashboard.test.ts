/**
 * The dashboard: the order service's GET / (the page, built with `npm run build:web`),
 * GET /dashboard/state and GET /dashboard/events (Server-Sent Events), against the four
 * running services.
 *
 * - The stream without a browser: a client that says Last-Event-ID gets only newer saga
 *   steps, then new ones as they commit; reconnecting from its last id misses nothing.
 * - The page in a Chromium-family browser the machine has (CHROMIUM_PATH, else chromium,
 *   google-chrome... on PATH; .ci/run installs Debian's; never a downloaded browser), driven with
 *   playwright-core; skipped with one line saying how to enable it when there is none, except
 *   under CI, where that fails: an order placed from the form reaches CONFIRMED on
 *   the timeline without a reload, the out-of-stock scenario shows the refund and the
 *   cancellation as compensation steps, and screenshots at 360 px and 1440 px go to test-output/.
 */
import { exec } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHttpApp, createLogger } from '@checkout-saga/shared/internal';
import { waitFor } from '@checkout-saga/shared/testing';
import { startSystem, type System } from '../../test/support/system.ts';
import { HistoryCursor, resumePointOf, tailOf } from '../src/history-cursor.ts';
import { NOT_BUILT_MESSAGE, pageRoot, pageRoutes } from '../src/page.ts';
import { pageSettings } from '../src/routes.ts';
import type { DashboardState, SagaStep } from '../src/wire.ts';
import { browserForTests } from './support/browser.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const outputDir = join(root, 'test-output');

// ---- the history cursor, on its own ---------------------------------------------------------

describe('HistoryCursor', () => {
  test('rows in id order move the position and the watermark together', () => {
    const cursor = new HistoryCursor({ max: 3, missing: [] }, 1000, 0);
    expect([4, 5, 6].map((id) => cursor.accept(id, 0))).toEqual([true, true, true]);
    expect(cursor.position).toBe(6);
    expect(cursor.watermark).toBe(6);
    expect(cursor.accept(5, 0)).toBe(false); // seen before
  });

  test('an id committed after a higher one is waited for, and the watermark stays below it until it comes', () => {
    const cursor = new HistoryCursor({ max: 9, missing: [] }, 1000, 0);
    expect(cursor.accept(11, 0)).toBe(true);
    expect(cursor.pending()).toEqual([10]);
    expect(cursor.watermark).toBe(9);
    expect(cursor.accept(12, 0)).toBe(true);
    expect(cursor.watermark).toBe(9);
    expect(cursor.accept(10, 5)).toBe(true); // the late commit is delivered
    expect(cursor.pending()).toEqual([]);
    expect(cursor.watermark).toBe(12);
  });

  test('an id that never shows up (a rolled-back transaction) is given up after the grace period', () => {
    const cursor = new HistoryCursor({ max: 20, missing: [17] }, 1000, 0);
    expect(cursor.watermark).toBe(16);
    cursor.expire(999);
    expect(cursor.watermark).toBe(16);
    cursor.expire(1000);
    expect(cursor.watermark).toBe(20);
    expect(cursor.accept(17, 1001)).toBe(false);
  });

  test('a snapshot resumes just below the first id it cannot see', () => {
    expect(tailOf([5, 6, 8, 9], 10)).toEqual({ max: 9, missing: [1, 2, 3, 4, 7] });
    expect(resumePointOf(tailOf([5, 6, 8, 9], 4))).toBe(6);
    expect(resumePointOf(tailOf([6, 7, 8, 9], 4))).toBe(9);
    expect(resumePointOf(tailOf([], 4))).toBe(0);
  });

  test('the slow-payment scenario says what it needs when the order service cannot know it works', () => {
    expect(pageSettings({ SAGA_TIMEOUT_MS: 90_000, DASHBOARD_PAYMENT_PROCESSING_MS: undefined }).slowPayment).toMatchObject({
      available: false,
      reason: expect.stringContaining('DASHBOARD_PAYMENT_PROCESSING_MS'),
    });
    expect(pageSettings({ SAGA_TIMEOUT_MS: 90_000, DASHBOARD_PAYMENT_PROCESSING_MS: 0 }).slowPayment.available).toBe(false);
    expect(pageSettings({ SAGA_TIMEOUT_MS: 3000, DASHBOARD_PAYMENT_PROCESSING_MS: 5000 }).slowPayment.available).toBe(true);
  });
});

// ---- the whole system -----------------------------------------------------------------------

let system: System;

beforeAll(async () => {
  // The page as the order service serves it: built now, so the test never looks at a stale one.
  await promisify(exec)('npm run build:web', { cwd: root });
  system = await startSystem('dashboard', { dashboard: true });
}, 120_000);

afterAll(async () => {
  await system?.stop();
});

interface Message {
  id?: string;
  event: string;
  data: string;
}

/** A Server-Sent Events client on fetch: collects every message until closed. */
async function openStream(path: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const response = await fetch(`${system.orderUrl}${path}`, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const messages: Message[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message: Message = { event: 'message', data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id') message.id = value;
          if (field === 'event') message.event = value;
          if (field === 'data') {
            message.data += value;
            hasData = true;
          }
        }
        if (hasData) messages.push(message);
      }
    }
  })().catch(() => {});
  return {
    response,
    messages,
    /** Saga steps received, each once (a row may come twice while a concurrent commit is pending; the page ignores repeats too). */
    steps: () => [
      ...new Map(
        messages.filter((message) => message.event === 'saga').map((message) => {
          const step = JSON.parse(message.data) as SagaStep;
          return [step.id, { ...step, resumeFrom: Number(message.id) }] as const;
        }),
      ).values(),
    ],
    async close() {
      abort.abort();
      await reading;
    },
  };
}

async function placeOrder(body: object): Promise<{ orderId: string; sagaId: string }> {
  const response = await fetch(`${system.orderUrl}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(202);
  return (await response.json()) as { orderId: string; sagaId: string };
}

const happyOrder = (email: string) => ({ customerEmail: email, items: [{ sku: 'KEYBOARD', qty: 1 }], amount: '89.99' });

async function finished(orderId: string): Promise<string> {
  return waitFor(
    async () => {
      const order = (await (await fetch(`${system.orderUrl}/orders/${orderId}`)).json()) as { status: string };
      return order.status === 'PENDING' ? undefined : order.status;
    },
    { message: `order ${orderId} to finish` },
  );
}

async function historyIds(sagaId: string): Promise<number[]> {
  const rows = await system.orderDb.selectFrom('saga_history').select('id').where('saga_id', '=', sagaId).orderBy('id').execute();
  return rows.map((row) => Number(row.id));
}

describe('GET /', () => {
  test('serves the built page with its assets, and answers 503 with how to build it when it is not built', async () => {
    const built = createHttpApp(createLogger('order', 'silent'));
    pageRoutes(built, pageRoot());
    const page = await built.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1];
    expect(script, 'index.html loads a built script').toBeDefined();
    const asset = await built.inject({ method: 'GET', url: script! });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
    expect((await built.inject({ method: 'GET', url: '/no-such-file' })).statusCode).toBe(404);
    await built.close();

    const unbuilt = createHttpApp(createLogger('order', 'silent'));
    pageRoutes(unbuilt, undefined);
    const missing = await unbuilt.inject({ method: 'GET', url: '/' });
    expect(missing.statusCode).toBe(503);
    expect(missing.body).toBe(NOT_BUILT_MESSAGE);
    expect(missing.body).toContain('npm run build:web');
    await unbuilt.close();
  });
});

describe('GET /dashboard/events', () => {
  test('a client with Last-Event-ID gets only newer saga steps, then new ones as they commit, and resumes without a gap', async () => {
    const first = await placeOrder(happyOrder('sse-first@example.com'));
    expect(await finished(first.orderId)).toBe('CONFIRMED');
    const lastSeen = Math.max(...(await historyIds(first.sagaId)));
    const missed = await placeOrder(happyOrder('sse-missed@example.com'));
    expect(await finished(missed.orderId)).toBe('CONFIRMED');

    const stream = await openStream('/dashboard/events', { 'last-event-id': String(lastSeen) });
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const live = await placeOrder(happyOrder('sse-live@example.com'));
    const missedIds = await historyIds(missed.sagaId);
    await waitFor(() => stream.steps().some((step) => step.sagaId === live.sagaId && step.type === 'OrderConfirmed'), {
      message: 'the live order to stream up to OrderConfirmed',
    });
    await stream.close();

    const steps = stream.steps();
    expect(steps.filter((step) => step.id <= lastSeen), 'nothing at or before Last-Event-ID').toEqual([]);
    expect(steps.filter((step) => step.sagaId === missed.sagaId).map((step) => step.id), 'the steps committed while away, in order').toEqual(missedIds);
    const liveSteps = steps.filter((step) => step.sagaId === live.sagaId);
    expect(liveSteps.map((step) => step.type)).toEqual(['OrderCreated', 'PaymentCompleted', 'InventoryReserved', 'OrderConfirmed']);
    expect(liveSteps.at(-1)).toMatchObject({ toState: 'CONFIRMED', order: { orderId: live.orderId, status: 'CONFIRMED' } });
    for (const step of steps) expect(step.resumeFrom, 'each id is a point to resume from').toBeGreaterThanOrEqual(lastSeen);

    // Reconnecting from the last id received: only what committed since.
    const resumeFrom = steps.at(-1)!.resumeFrom;
    const later = await placeOrder({ customerEmail: 'sse-later@example.com', items: [{ sku: 'MOUSE', qty: 1 }], amount: '0.50' });
    expect(await finished(later.orderId)).toBe('CANCELLED');
    const again = await openStream(`/dashboard/events?after=0`, { 'last-event-id': String(resumeFrom) });
    await waitFor(() => again.steps().some((step) => step.sagaId === later.sagaId && step.type === 'OrderCancelled'), { message: 'the catch-up to bring the later order' });
    await again.close();
    expect(again.steps().filter((step) => step.id <= resumeFrom)).toEqual([]);
    expect(again.steps().filter((step) => step.sagaId === later.sagaId).map((step) => step.id)).toEqual(await historyIds(later.sagaId));
  });

  test("streams, live, the sagas another order instance commits on the same database", async () => {
    const other = await system.startOrderInstance();
    try {
      const [newest] = await system.orderDb.selectFrom('saga_history').select((eb) => eb.fn.max('id').as('id')).execute();
      const stream = await openStream('/dashboard/events', { 'last-event-id': String(newest?.id ?? 0) });
      const response = await fetch(`${other.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(happyOrder('other-instance@example.com')) });
      expect(response.status).toBe(202);
      const placed = (await response.json()) as { orderId: string; sagaId: string };
      await waitFor(() => stream.steps().some((step) => step.sagaId === placed.sagaId && step.type === 'OrderConfirmed'), {
        message: "the first instance to stream the other instance's order up to OrderConfirmed",
      });
      await stream.close();
      expect(stream.steps().filter((step) => step.sagaId === placed.sagaId).map((step) => step.id)).toEqual(await historyIds(placed.sagaId));
    } finally {
      await other.stop();
    }
  });

  test('GET /dashboard/state: orders, catalogue, counters and where to resume', async () => {
    const state = (await (await fetch(`${system.orderUrl}/dashboard/state`)).json()) as DashboardState;
    expect(state.resumeFrom).toBeGreaterThan(0);
    expect(state.orders.length).toBeGreaterThan(0);
    expect(state.products).toMatchObject({ status: 'ok' });
    expect(state.products.products.map((product) => product.sku)).toContain('LIMITED-EDITION');
    expect(state.reliability.services.map((counters) => [counters.service, counters.status])).toEqual([
      ['order', 'ok'],
      ['payment', 'ok'],
      ['inventory', 'ok'],
      ['notification', 'ok'],
    ]);
    expect(state.settings.slowPayment.available).toBe(false);
  });
});

// ---- the page in a browser ------------------------------------------------------------------

describe('the dashboard page in Chromium', () => {
  let context: BrowserContext | undefined;
  let userDataDir: string | undefined;

  afterAll(async () => {
    await context?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  async function launch(executablePath: string): Promise<Page> {
    userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 1100 },
    });
    return context.pages()[0] ?? (await context.newPage());
  }

  const timelineStep = (page: Page, type: string) => page.locator(`ol.steps > li[data-type="${type}"]`);

  test('places an order, follows it to CONFIRMED and an out-of-stock order through its refund, live, at 1440 px and 360 px', async (testContext) => {
    const browser = browserForTests();
    if ('skip' in browser) {
      console.warn(browser.skip);
      testContext.skip(browser.skip);
      return;
    }
    const page = await launch(browser.executable);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    let navigations = 0;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });

    await page.goto(`${system.orderUrl}/`);
    await page.getByText('Live: updates are pushed').waitFor();
    await page.locator('#catalogue [data-sku="KEYBOARD"]').waitFor();
    const stockBefore = Number(await page.locator('#catalogue [data-sku="KEYBOARD"] .stock').textContent());

    // The form: two lines, an email, the amount (filled from the catalogue price).
    await page.getByLabel('Customer email').fill('browser@example.com');
    expect(await page.getByLabel('Amount').inputValue()).toBe('148.99');
    await page.getByRole('button', { name: 'Place order' }).click();
    await timelineStep(page, 'OrderConfirmed').waitFor({ timeout: 20_000 });
    const confirmed = timelineStep(page, 'InventoryReserved');
    expect(await confirmed.textContent()).toContain('CONFIRMED');
    expect(await confirmed.textContent()).toContain('from inventory');
    expect(await page.locator('#timeline .timeline-title').textContent()).toContain('Confirmed');
    const placedId = /#([0-9a-f]{8})/.exec((await page.locator('#form-status').textContent()) ?? '')?.[1];
    expect(placedId, 'the form says which order it placed').toBeDefined();
    expect(await page.locator('#timeline .timeline-title').textContent()).toContain(placedId!);
    const [row] = await system.orderDb.selectFrom('orders').select(['order_id', 'status']).where('customer_email', '=', 'browser@example.com').execute();
    expect(row).toMatchObject({ status: 'CONFIRMED' });
    expect(row!.order_id.endsWith(placedId!)).toBe(true);
    // The reservation reaches the catalogue too.
    await waitFor(async () => Number(await page.locator('#catalogue [data-sku="KEYBOARD"] .stock').textContent()) === stockBefore - 1, {
      message: 'the catalogue to show the reserved keyboard',
    });

    // Out of stock: charged, not reservable, refunded, cancelled; the compensation steps say so.
    await page.getByRole('button', { name: 'Out of stock' }).click();
    await timelineStep(page, 'OrderCancelled').waitFor({ timeout: 20_000 });
    const outOfStockId = /#([0-9a-f]{8})/.exec((await page.locator('#scenario-result').textContent()) ?? '')?.[1];
    expect(await page.locator('#timeline .timeline-title').textContent()).toContain(outOfStockId!);
    expect(await page.locator('#timeline .timeline-title').textContent()).toMatch(/Cancelled\s+inventory failed/);
    for (const type of ['InventoryFailed', 'PaymentRefundRequested', 'PaymentRefunded', 'OrderCancelled']) {
      expect(await timelineStep(page, type).textContent(), `${type} is marked as compensation`).toContain('Compensation');
    }
    expect(await timelineStep(page, 'PaymentRefunded').textContent()).toContain('from payment');
    expect(await timelineStep(page, 'OrderCancelled').textContent()).toContain('CANCELLED');
    expect(await timelineStep(page, 'PaymentCompleted').textContent()).not.toContain('Compensation');

    // Keyboard: the first order again, chosen from the table with Enter.
    const firstOrder = page.getByRole('button', { name: new RegExp(`^Order ${placedId}, confirmed`) });
    await firstOrder.focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await firstOrder.getAttribute('aria-pressed')) === 'true', { message: 'Enter to select the order' });
    await timelineStep(page, 'OrderConfirmed').waitFor();
    // The filter narrows the table to cancelled orders.
    await page.getByLabel('Status').selectOption('CANCELLED');
    await waitFor(async () => (await page.locator('#orders-body tr').count()) > 0 && !(await page.locator('#orders-body').textContent())?.includes('Confirmed'), {
      message: 'only cancelled orders to be listed',
    });
    await page.getByLabel('Status').selectOption('');

    expect(problems, 'no script errors, no refused loads').toEqual([]);

    // The stream breaks: the browser reconnects with Last-Event-ID and catches up on what it missed meanwhile.
    system.services.find((service) => service.name === 'order')!.app.server.closeAllConnections();
    await page.getByText('Reconnecting').waitFor();
    const whileAway = await placeOrder(happyOrder('while-away@example.com'));
    expect(await finished(whileAway.orderId)).toBe('CONFIRMED');
    await page.getByText('Live: updates are pushed').waitFor();
    const awayRow = page.locator(`#orders-body tr[data-order-id="${whileAway.orderId}"]`);
    await awayRow.waitFor();
    await waitFor(async () => (await awayRow.textContent())?.includes('Confirmed'), { message: 'the order placed while away to show as confirmed' });

    expect(navigations, 'the page never reloaded').toBe(1);
    expect(problems.filter((problem) => !problem.includes('ERR_INCOMPLETE_CHUNKED_ENCODING')), 'nothing but the stream we broke').toEqual([]);

    // The screenshots show the out-of-stock order's compensation path.
    await page.getByRole('button', { name: new RegExp(`^Order ${outOfStockId}, cancelled`) }).click();
    await timelineStep(page, 'PaymentRefunded').waitFor();

    mkdirSync(outputDir, { recursive: true });
    await page.screenshot({ path: join(outputDir, 'dashboard-1440.png'), fullPage: true });
    await page.setViewportSize({ width: 360, height: 800 });
    await waitFor(async () => (await page.evaluate<number>('document.documentElement.scrollWidth')) <= 360, { message: 'the page to fit 360 px without scrolling sideways' });
    await page.screenshot({ path: join(outputDir, 'dashboard-360.png'), fullPage: true });
  });
});
