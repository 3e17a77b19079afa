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
});
