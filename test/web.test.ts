/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebDemo } from '../examples/web/server.js';

/** Debian's Chromium (`apt-get install chromium`), driven as it is: nothing is downloaded. */
const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
);

let demo: Awaited<ReturnType<typeof startWebDemo>>;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (executablePath === undefined) {
    throw new Error('Chromium is not installed: `apt-get install -y chromium` (.ci/run does this)');
  }
  demo = await startWebDemo({ port: 0, host: '127.0.0.1', workspaces: 6, rate: 0, windowMs: 100 });
  browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 640 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

const updatesOf = (workspaceId: string): Promise<number> =>
  page.$eval(`[data-workspace-id="${workspaceId}"]`, (card) =>
    Number((card as HTMLElement).dataset.updates),
  );

async function burst(workspaceId: string, events: number): Promise<void> {
  const response = await fetch(`${demo.url}burst?workspace=${workspaceId}&events=${events}`, {
    method: 'POST',
  });
  expect(response.status).toBe(200);
}

describe('the live page (npm start -- --web), in headless Chromium', () => {
  it('shows a card per workspace, one update per burst, the server’s counters, and N updates with coalescing off', async () => {
    await page.goto(demo.url);
    await page.waitForSelector('[data-workspace-id]');
    await page.waitForFunction(() => document.querySelectorAll('[data-workspace-id]').length === 6);
    expect(await updatesOf('ws-003')).toBe(0);

    // Coalescing on: a burst of five events is one update of the card.
    await burst('ws-003', 5);
    await page.waitForFunction(
      () =>
        document.querySelector<HTMLElement>('[data-workspace-id="ws-003"]')?.dataset.updates ===
        '1',
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await updatesOf('ws-003')).toBe(1);

    // The counters show what the server counted.
    const { eventsIn, writesOut } = demo.stats();
    expect([eventsIn, writesOut]).toEqual([5, 1]);
    await page.waitForFunction(
      (events, writes) =>
        document.getElementById('events-in')?.textContent === String(events) &&
        document.getElementById('writes-out')?.textContent === String(writes),
      {},
      eventsIn,
      writesOut,
    );
    expect(await page.$eval('#events-per-write', (element) => element.textContent)).toBe('5.00');

    // Coalescing off: every event is a write, and an update of the card.
    await page.click('#coalescing');
    await page.waitForFunction(
      () => document.getElementById('coalescing')?.textContent === 'Coalescing: off',
    );
    await burst('ws-004', 5);
    await page.waitForFunction(
      () =>
        document.querySelector<HTMLElement>('[data-workspace-id="ws-004"]')?.dataset.updates ===
        '5',
    );
    expect(demo.stats()).toMatchObject({ eventsIn: 10, writesOut: 6, coalescing: false });
    await page.screenshot({ path: join(tmpdir(), 'event-coalescer-live-page.png') });
  }, 60_000);

  it('gets what it missed after its connection drops, from its Last-Event-ID, without a new snapshot', async () => {
    await page.goto(demo.url);
    await page.waitForFunction(() => document.querySelectorAll('[data-workspace-id]').length === 6);
    const snapshots = () =>
      page.$eval('#cards', (cards) => Number((cards as HTMLElement).dataset.snapshots));
    expect(await snapshots()).toBe(1);
    await fetch(`${demo.url}coalescing?on=true`, { method: 'POST' });
    const before = await updatesOf('ws-001');
    // The connection drops; writes go on while the page is away (it retries after 500 ms):
    // ws-001 to CHECKING, then (two events, one write) to FIXING.
    demo.dropConnections();
    await burst('ws-001', 1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await burst('ws-001', 2);
    await burst('ws-002', 1);
    await page.waitForFunction(
      (expected) =>
        document.querySelector<HTMLElement>('[data-workspace-id="ws-001"]')?.dataset.updates ===
        String(expected),
      { timeout: 10_000 },
      before + 2,
    );
    // It resumed where it was: the missed changes, as changes, and no snapshot again.
    expect(await snapshots()).toBe(1);
    expect(await updatesOf('ws-002')).toBeGreaterThanOrEqual(1);
    const shown = await page.$eval('[data-workspace-id="ws-001"] h2 small', (v) => v.textContent);
    expect(shown).toBe(`v${(await demo.store.getByWorkspaceId('ws-001'))?.version}`);
  }, 60_000);

  it('is sent the snapshot again when its Last-Event-ID is not one the server keeps', async () => {
    const response = await fetch(`${demo.url}events`, {
      headers: { 'last-event-id': 'from-before-a-restart' },
    });
    const reader = response.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    let text = '';
    while (!text.includes('event: snapshot')) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    expect(text).toMatch(/id: [0-9a-z]+-\d+\nevent: snapshot\ndata: \[/);
    await reader.cancel();
  });
});
