#!/usr/bin/env node
// The chat page shows the history again, exactly once, after a reload. Drives
// Debian's /usr/bin/chromium through playwright-core.
//
// usage: node browser_reload.mjs URL
// env:   CHROMIUM_PATH (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 30000)
//
// Opens the page, waits for "connected", sends 3 unique messages through
// #input/#form and waits until they are listed with their ids; reloads; after
// reconnecting the page (which starts from serverOffset 0) must list those 3
// messages again, each exactly once, with the same ids, in order, and the whole
// list must be in increasing id order. An init script also records the raw
// 'chat message' events the page's socket receives, to catch duplicates the
// page itself would hide. Fails on page JS errors. Exits 0 on success, 1 on failure.

import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  CheckFailed,
  check,
  log,
  onFinish,
  runMain,
  setStep,
  sleep,
  startRun,
} from './e2e_common.mjs';

const STEP_TIMEOUT_MS = 8_000;
const DUPLICATE_GRACE_MS = 500;

const { baseUrl, args } = startRun('browser_reload', { usage: 'node browser_reload.mjs URL', defaultTimeoutMs: 30_000 });
const pageUrl = new URL('/', baseUrl).href;

let browser = null;
onFinish(() => browser?.close());

// ---------------------------------------------------------------- helpers

// Runs in the page before its scripts: wraps the global io() that
// /socket.io/socket.io.js installs, to record every 'chat message' as [id, text].
function recordRawEvents() {
  window.__rawChat = [];
  let wrapped;
  Object.defineProperty(window, 'io', {
    configurable: true,
    get() {
      return wrapped;
    },
    set(realIo) {
      wrapped = Object.assign(function (...args) {
        const socket = realIo.apply(this, args);
        socket.onAny((event, ...eventArgs) => {
          if (event === 'chat message') window.__rawChat.push([eventArgs[1], eventArgs[0]]);
        });
        return socket;
      }, realIo);
    },
  });
}

async function waitStatus(page, name, state) {
  try {
    await page.waitForSelector(`#status[data-state="${state}"]`, { timeout: STEP_TIMEOUT_MS });
  } catch {
    const now = await page
      .$eval('#status', (el) => `data-state=${el.dataset.state} text=${JSON.stringify(el.textContent)}`)
      .catch((e) => `unreadable (${e.message})`);
    throw new CheckFailed(`${name} status`, `did not become "${state}" within ${STEP_TIMEOUT_MS} ms; status is ${now}`);
  }
}

async function sendFromPage(page, text) {
  await page.fill('#input', text);
  const submit = page.locator('#form [type="submit"]');
  if ((await submit.count()) > 0) {
    await submit.first().click();
  } else {
    await page.$eval('#form', (form) => form.requestSubmit());
  }
  await page.waitForFunction(() => document.getElementById('input').value === '', null, {
    timeout: STEP_TIMEOUT_MS,
  });
}

// all list items as { id (string or null), text }
function listItems(page) {
  return page.$$eval('#messages li', (lis) =>
    lis.map((li) => ({
      id: li.getAttribute('data-id'),
      text: (li.querySelector('.text') ?? li).textContent,
    })),
  );
}

// waits until each text is listed with an id; returns the matching items
async function waitListed(page, name, texts) {
  try {
    await page.waitForFunction(
      (ts) => {
        const items = Array.from(document.querySelectorAll('#messages li[data-id]'));
        return ts.every((t) => items.some((li) => (li.querySelector('.text') ?? li).textContent === t));
      },
      texts,
      { timeout: STEP_TIMEOUT_MS },
    );
  } catch {
    const items = await listItems(page).catch(() => []);
    const missing = texts.filter((t) => !items.some((it) => it.text === t && it.id !== null));
    throw new CheckFailed(`${name} lists the messages`, `not listed with an id within ${STEP_TIMEOUT_MS} ms: ${JSON.stringify(missing)}`);
  }
}

// checks that `texts` are listed exactly once each, in order, with numeric ids; returns the ids
function verifyListed(items, texts, name) {
  const ours = items.filter((it) => texts.includes(it.text));
  for (const t of texts) {
    const n = ours.filter((it) => it.text === t).length;
    check(n === 1, `${name} each message once`, () => `${JSON.stringify(t)} is listed ${n} times`);
  }
  check(
    ours.every((it, i) => it.text === texts[i]),
    `${name} order`,
    () => `listed in the order ${JSON.stringify(ours.map((it) => it.text))}`,
  );
  for (const it of ours) {
    check(/^[1-9][0-9]*$/.test(it.id ?? ''), `${name} ids`, () => `${JSON.stringify(it.text)} has data-id=${JSON.stringify(it.id)}`);
  }
  const ids = ours.map((it) => Number(it.id));
  check(ids.every((id, i) => i === 0 || id > ids[i - 1]), `${name} ids increase`, () => `ids ${JSON.stringify(ids)}`);
  const all = items.filter((it) => it.id !== null).map((it) => Number(it.id));
  const unordered = all.findIndex((id, i) => i > 0 && id <= all[i - 1]);
  check(
    unordered === -1,
    `${name} whole list in id order`,
    () => `item ${unordered} has id ${all[unordered]} after ${all[unordered - 1]}`,
  );
  return ids;
}

// ---------------------------------------------------------------- test
async function main() {
  log(`browser_reload against ${pageUrl} with ${CHROMIUM_PATH}`);
  const tok = randomBytes(6).toString('hex');
  const texts = [1, 2, 3].map((i) => `reload ${tok} ${i}/3 ${randomBytes(4).toString('hex')}`);

  setStep('launch chromium');
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: STEP_TIMEOUT_MS,
    });
  } catch (e) {
    throw new CheckFailed('launch chromium', String(e.message).split('\n')[0]);
  }
  log(`chromium ${browser.version()} launched`);
  const context = await browser.newContext({ viewport: { width: 390, height: 760 } });
  await context.addInitScript(recordRawEvents);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => {
    pageErrors.push(err.message);
    log(`page error: ${err.message}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') log(`console error: ${msg.text()}`);
  });

  setStep('open page');
  const response = await page.goto(pageUrl, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS }).catch((e) => {
    throw new CheckFailed('GET /', String(e.message).split('\n')[0]);
  });
  check(response?.ok(), 'GET /', () => `HTTP ${response?.status()}`);
  await waitStatus(page, 'page', 'connected');
  log('page connected');

  setStep('send 3 messages');
  for (const t of texts) await sendFromPage(page, t);
  await waitListed(page, 'page', texts);
  await sleep(DUPLICATE_GRACE_MS);
  const before = verifyListed(await listItems(page), texts, 'before reload:');
  log(`before reload: listed with ids ${JSON.stringify(before)}`);

  setStep('reload');
  const reloaded = await page.reload({ waitUntil: 'load', timeout: STEP_TIMEOUT_MS }).catch((e) => {
    throw new CheckFailed('reload', String(e.message).split('\n')[0]);
  });
  check(reloaded?.ok(), 'reload', () => `HTTP ${reloaded?.status()}`);
  await waitStatus(page, 'reloaded page', 'connected');
  log('reloaded page connected');

  setStep('history after reload');
  await waitListed(page, 'reloaded page', texts);
  await sleep(DUPLICATE_GRACE_MS); // catch duplicates
  const items = await listItems(page);
  const after = verifyListed(items, texts, 'after reload:');
  check(
    after.every((id, i) => id === before[i]),
    'after reload: same ids',
    () => `ids ${JSON.stringify(after)} after reload, ${JSON.stringify(before)} before`,
  );
  const raw = await page.evaluate(() => window.__rawChat);
  check(Array.isArray(raw), 'raw event capture', 'the init script did not run (window.__rawChat missing)');
  const rawIds = raw.map((e) => e[0]);
  const dup = rawIds.find((id, i) => rawIds.indexOf(id) !== i);
  check(dup === undefined, 'server sent each message once', () => `the reloaded page's socket received id ${dup} more than once`);
  for (const [i, t] of texts.entries()) {
    const n = raw.filter((e) => e[1] === t).length;
    check(n === 1, 'server sent each message once', () => `${JSON.stringify(t)} (#${before[i]}) received ${n} times`);
  }
  log(`after reload: ${items.length} item(s) listed, ours with ids ${JSON.stringify(after)}, ${raw.length} raw event(s)`);

  setStep('page errors');
  check(pageErrors.length === 0, 'no page JS errors', () => pageErrors.join(' | '));
  return after;
}

runMain(main, (ids) => `3 messages listed once each with the same ids (${ids.join(', ')}) after a reload`);
