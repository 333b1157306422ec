#!/usr/bin/env node
// The page scenario of `make bench`: opens a server's chat page in headless Chromium on a
// database of ROWS rows and measures what a person waits for and what the tab then holds.
//
//   node bench/page.mjs URL ROWS NEWEST_TEXT [CAP_SECONDS=60]
//
// Prints one JSON line: newest_ms (from navigation until an <li> shows NEWEST_TEXT, null if
// not within the cap), dom_items (<li> elements once the page is quiet, or at the cap; null
// when the tab is too busy to say), dom_nodes (all DOM nodes) and heap_mb (the tab's JS heap
// after a garbage collection). Uses playwright-core from
// tests/js (make test-deps) and Debian's chromium.

import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/js/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, rowsArg, newestText, capArg] = process.argv.slice(2);
if (!url || !rowsArg || !newestText) {
  console.error('usage: node bench/page.mjs URL ROWS NEWEST_TEXT [CAP_SECONDS]');
  process.exit(2);
}
const rows = Number(rowsArg);
const capMs = Number(capArg || 60) * 1000;
// The page is quiet once its list has not changed for this long.
const QUIET_MS = 1500;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
});
const watchdog = setTimeout(() => {
  console.error('page.mjs: stuck; giving up');
  process.exit(1);
}, capMs + 60_000);

// Resolves to what `fn` gives, or to `fallback` if the page does not answer in `ms` (a
// tab busy inserting a million list items may not).
function within(promise, ms, fallback) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(fallback), ms))]);
}

try {
  const context = await browser.newContext({ viewport: { width: 800, height: 700 } });
  // Notes, in page time, when the newest message first shows and when the list last changed.
  await context.addInitScript((text) => {
    window.__newestAt = null;
    window.__changedAt = 0;
    const watch = () => {
      const list = document.getElementById('messages') || document.body;
      new MutationObserver(() => {
        window.__changedAt = performance.now();
        if (window.__newestAt !== null) return;
        // The last few items only: looking through all would slow a long list down.
        let item = list.lastElementChild;
        for (let i = 0; i < 3 && item; i += 1, item = item.previousElementSibling) {
          if (item.textContent.includes(text)) window.__newestAt = performance.now();
        }
      }).observe(list, { childList: true, subtree: true });
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
    else watch();
  }, newestText);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const started = Date.now();
  await page.goto(url, { waitUntil: 'commit', timeout: 30_000 });
  let newestMs = null;
  // Wait for the newest message, then for the list to settle, within the cap.
  while (Date.now() - started < capMs) {
    const state = await within(page.evaluate(() => [window.__newestAt, window.__changedAt, performance.now()]), 5000, null);
    if (state) {
      const [newestAt, changedAt, now] = state;
      if (newestAt !== null) newestMs = Math.round(newestAt);
      if (newestAt !== null && now - changedAt > QUIET_MS) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const domItems = await within(page.evaluate(() => document.querySelectorAll('li').length), 20_000, null);
  await within(cdp.send('HeapProfiler.collectGarbage'), 20_000, null);
  const metrics = await within(cdp.send('Performance.getMetrics'), 20_000, null);
  const metric = (name) => {
    const found = metrics && metrics.metrics.find((m) => m.name === name);
    return found ? found.value : null;
  };
  const heap = metric('JSHeapUsedSize');
  console.log(JSON.stringify({
    scenario: 'page',
    rows,
    newest_ms: newestMs,
    dom_items: domItems,
    // Every DOM node (elements and text), from the browser's metrics: answered even by a
    // tab too busy to run a script.
    dom_nodes: metric('Nodes'),
    heap_mb: heap === null ? null : Math.round((heap / 1048576) * 100) / 100,
    cap_seconds: capMs / 1000,
  }));
} finally {
  clearTimeout(watchdog);
  await within(browser.close(), 10_000, null);
}
process.exit(0);
