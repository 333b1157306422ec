#!/usr/bin/env node
// The chat page as people use it, in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), on the real gateway. One scenario per run:
//
//   node browser_page.mjs URL history  [NEWEST_ID]  a seeded database: the newest page opens,
//        scrolling up loads older pages in order (no gap, no duplicate) with the list
//        bounded, scrolling back down reads forward to the live end; a long absence shows
//        the "earlier messages" marker, which loads what was skipped.
//   node browser_page.mjs URL people   PID         names and times; presence with two
//        browsers, one of which closes; typing shown and expiring; the unread title;
//        notifications only after a click; keyboard-only sending; live messages announced
//        and history not; own messages pending -> confirmed, and (the gateway stopped with
//        SIGSTOP) failed -> retried -> stored once.
//   node browser_page.mjs URL shell    SHOTS_DIR   the offline shell (service worker, network
//        cut, back again), 320 px, dark theme; screenshots for the README.
//
// env: CHROMIUM_PATH (default /usr/bin/chromium), E2E_TIMEOUT_MS

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
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
  token,
} from './e2e_common.mjs';

const STEP_MS = 10_000;
const { baseUrl, args } = startRun('browser_page', {
  usage: 'node browser_page.mjs URL history|people|shell [ARG]',
  defaultTimeoutMs: 150_000,
});
const [scenario, extra] = args;
const pageUrl = new URL('/', baseUrl).href;

let browser = null;
onFinish(() => browser?.close());

// ---------------------------------------------------------------- helpers
async function launch() {
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: STEP_MS });
  log(`chromium ${browser.version()}`);
}

// A page in its own context (its own localStorage: another person), watched for errors.
// `name`: saved before the page loads; null: "later" (no name); `ask`: a first visit.
async function openPage(label, { name = null, ask = false, viewport = { width: 800, height: 700 }, colorScheme = 'light', init } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  if (!ask) {
    await context.addInitScript(([n]) => {
      if (!sessionStorage.getItem('emberchat-test-init')) {
        sessionStorage.setItem('emberchat-test-init', '1');
        if (n) localStorage.setItem('emberchat-name', n);
        else localStorage.setItem('emberchat-name-later', '1');
      }
    }, [name]);
  }
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const errors = [];
  page.on('pageerror', (err) => {
    errors.push(err.message);
    log(`${label}: page error: ${err.message}`);
  });
  const response = await page.goto(pageUrl, { waitUntil: 'load' });
  check(response && response.ok(), `${label} GET /`, `HTTP ${response && response.status()}`);
  await waitConnected(page, label);
  return { label, page, context, errors };
}

async function waitConnected(page, label) {
  try {
    await page.waitForSelector('#status[data-state="connected"]', { timeout: STEP_MS });
  } catch {
    throw new CheckFailed(`${label} connects`, `status is ${await page.textContent('#status').catch(() => '?')}`);
  }
}

// Waits for `predicate(arg)` in the page, with a readable failure.
async function waitIn(p, what, predicate, arg, ms = STEP_MS) {
  try {
    await p.page.waitForFunction(predicate, arg, { timeout: ms, polling: 50 });
  } catch (e) {
    const state = await p.page
      .evaluate(() => {
        const s = document.getElementById('scroller');
        const items = Array.from(document.querySelectorAll('#messages li')).slice(-3);
        return JSON.stringify({
          items: document.getElementById('messages').childElementCount,
          last: items.map((li) => `${li.className}#${li.dataset.id || ''} ${li.textContent.slice(-40)}`),
          newestButton: !document.getElementById('newest-btn').hidden,
          olderButton: !document.getElementById('older-btn').hidden,
          scroll: [Math.round(s.scrollTop), s.scrollHeight, s.clientHeight],
          status: document.getElementById('status').dataset.state,
        });
      })
      .catch(() => 'unreadable');
    throw new CheckFailed(`${p.label}: ${what}`, `not within ${ms} ms (${String(e.message).split('\n')[0]}); page: ${state}`);
  }
}

// The list as {id, text, name, time, cls} in order, messages only.
function listed(p) {
  return p.page.$$eval('#messages li.msg', (items) =>
    items.map((li) => ({
      id: li.dataset.id ? Number(li.dataset.id) : null,
      text: li.querySelector('.text').textContent,
      name: li.querySelector('.name').textContent,
      time: li.querySelector('time').textContent,
      state: li.dataset.state || null,
    })),
  );
}

function itemCount(p) {
  return p.page.$eval('#messages', (ul) => ul.childElementCount);
}

async function send(p, text) {
  await p.page.fill('#input', text);
  await p.page.click('#send-btn');
}

async function waitText(p, text, ms = STEP_MS) {
  await waitIn(p, `shows ${JSON.stringify(text)}`, (t) => Array.from(document.querySelectorAll('#messages li.msg[data-id] .text')).some((el) => el.textContent === t), text, ms);
}

function checkContiguous(ids, what) {
  for (let i = 1; i < ids.length; i++) {
    check(ids[i] === ids[i - 1] + 1, what, () => `ids ${ids[i - 1]} then ${ids[i]} (gap or duplicate)`);
  }
}

function noErrors(...pages) {
  for (const p of pages) check(p.errors.length === 0, `${p.label} JS errors`, p.errors.join(' | '));
}

// A tutorial client (socket.io-client, no opt-in) that sends `count` messages with acks.
async function sendFromTutorialClient(prefix, count) {
  const socket = io(baseUrl, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  for (let i = 0; i < count; i++) {
    await socket.timeout(5000).emitWithAck('chat message', `${prefix} ${i}`, `${prefix}-${i}`);
  }
  socket.disconnect();
}

// ---------------------------------------------------------------- history
async function history() {
  const newest = Number(extra);
  check(Number.isInteger(newest) && newest > 1000, 'arguments', 'history needs the newest seeded id');
  setStep('open on the seeded database');
  const started = Date.now();
  const reader = await openPage('reader');
  await waitIn(reader, `shows the newest message #${newest}`, (id) => !!document.querySelector(`#messages li[data-id="${id}"]`), newest, 20_000);
  log(`newest message #${newest} on screen ${Date.now() - started} ms after navigation`);
  let items = await listed(reader);
  check(items.length <= 100, 'first page', `${items.length} messages listed, expected the newest 100 at most`);
  checkContiguous(items.map((m) => m.id), 'first page in order');
  check(await reader.page.isVisible('#older-btn'), 'older history offered', 'no "Load older messages" button');

  setStep('scroll up through older pages');
  const seen = new Set(items.map((m) => m.id));
  let oldestSeen = items[0].id;
  for (let round = 0; round < 14; round++) {
    const before = oldestSeen;
    await reader.page.$eval('#scroller', (el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await waitIn(reader, `loads the page before #${before}`, (id) => {
      const first = document.querySelector('#messages li.msg[data-id]');
      return first && Number(first.dataset.id) < id;
    }, before);
    items = await listed(reader);
    checkContiguous(items.map((m) => m.id).filter((id) => id !== null), `page ${round + 1} in order`);
    oldestSeen = items[0].id;
    for (const m of items) seen.add(m.id);
    const count = await itemCount(reader);
    check(count <= 1000, 'list bounded', `${count} items in the list`);
  }
  const bottomNow = items[items.length - 1].id;
  check(bottomNow < newest, 'far end trimmed', `the list still ends at #${bottomNow} after 14 pages up`);
  log(`scrolled up to #${oldestSeen}; the list holds ${await itemCount(reader)} items, ending at #${bottomNow}`);

  setStep('scroll back down to the live end');
  for (let round = 0; round < 30; round++) {
    const last = (await listed(reader)).filter((m) => m.id).pop().id;
    if (last === newest) break;
    await reader.page.$eval('#scroller', (el) => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); });
    await waitIn(reader, `reads forward after #${last}`, (id) => {
      const all = document.querySelectorAll('#messages li.msg[data-id]');
      return Number(all[all.length - 1].dataset.id) > id;
    }, last);
  }
  items = await listed(reader);
  checkContiguous(items.map((m) => m.id), 'forward pages in order');
  check(items[items.length - 1].id === newest, 'back at the newest', `list ends at #${items[items.length - 1].id}`);

  setStep('live again');
  const live = `live ${token()}`;
  await sendFromTutorialClient(live, 1);
  await waitText(reader, `${live} 0`);
  items = await listed(reader);
  check(items[items.length - 1].id === newest + 1, 'live message appended', `last is #${items[items.length - 1].id}`);
  check(items[items.length - 1].name === 'anonymous', 'tutorial client shown as anonymous', items[items.length - 1].name);

  setStep('bounded while reading above');
  // Halfway up (no older page loads): no longer at the bottom, the list still live. 700 live
  // messages must not grow it past its bound: the bottom is let go, and read again when
  // scrolled back down.
  await reader.page.$eval('#scroller', (el) => { el.scrollTop = el.scrollHeight / 2; el.dispatchEvent(new Event('scroll')); });
  await sleep(300);
  const flood = `flood ${token()}`;
  await sendFromTutorialClient(flood, 700);
  await waitIn(reader, 'offers the new messages', () => !document.getElementById('newest-btn').hidden);
  const bounded = await itemCount(reader);
  check(bounded <= 1000, 'list bounded under live messages', `${bounded} items`);
  for (let round = 0; round < 40; round++) {
    const last = (await listed(reader)).filter((m) => m.id).pop();
    if (last.text === `${flood} 699`) break;
    await reader.page.$eval('#scroller', (el) => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); });
    await waitIn(reader, `reads forward after #${last.id}`, (id) => {
      const all = document.querySelectorAll('#messages li.msg[data-id]');
      return Number(all[all.length - 1].dataset.id) > id;
    }, last.id);
  }
  items = await listed(reader);
  checkContiguous(items.map((m) => m.id), 'read forward through the flood in order');
  check(items[items.length - 1].text === `${flood} 699`, 'flood read to its end', items[items.length - 1].text);
  log(`700 live messages while reading above: ${bounded} items at most, read forward in order`);

  setStep('long absence');
  await reader.page.click('#toggle-btn');
  await reader.page.waitForSelector('#status[data-state="disconnected"]');
  const away = `away ${token()}`;
  await sendFromTutorialClient(away, 130);
  await reader.page.click('#toggle-btn');
  await waitConnected(reader.page, 'reader');
  await waitText(reader, `${away} 129`);
  const marker = await reader.page.textContent('#messages li.gap button');
  check(/^30 earlier messages — load$/.test(marker.trim()), 'marker', `marker says ${JSON.stringify(marker)}`);
  items = await listed(reader);
  const aways = items.filter((m) => m.text.startsWith(away));
  check(aways.length === 100, 'newest page after the absence', `${aways.length} of the 130 shown before loading`);
  await reader.page.click('#messages li.gap button');
  await waitIn(reader, 'marker gone once loaded', () => !document.querySelector('#messages li.gap'));
  items = await listed(reader);
  const all = items.filter((m) => m.text.startsWith(away));
  check(all.length === 130, 'all missed messages after loading', `${all.length} of 130`);
  checkContiguous(items.map((m) => m.id), 'the gap filled in order');
  check(all.every((m, i) => m.text === `${away} ${i}`), 'missed messages in order', 'out of order');
  noErrors(reader);
  return `newest of ${newest} opened, 14 pages up and back in order, marker for 30 skipped`;
}

// ---------------------------------------------------------------- people
async function people() {
  const pid = Number(extra);
  check(Number.isInteger(pid) && pid > 1, 'arguments', 'people needs the gateway pid');
  setStep('two people');
  const countRequests = () => {
    window.__permissionRequests = 0;
    if (window.Notification) {
      const request = Notification.requestPermission.bind(Notification);
      Notification.requestPermission = (...a) => {
        window.__permissionRequests += 1;
        return request(...a);
      };
    }
  };
  const ana = await openPage('ana', { ask: true, init: countRequests });
  // Ana picks her name in the page's own form.
  check(await ana.page.isVisible('#name-form'), 'name asked once', 'no name form on a first visit');
  await ana.page.fill('#name-input', '  Ana\u202e ');
  await ana.page.click('#name-form button[type="submit"]');
  await waitIn(ana, 'bad name refused', () => document.getElementById('name-error').textContent.includes('invisible'));
  await ana.page.fill('#name-input', '  Ana  ');
  await ana.page.click('#name-form button[type="submit"]');
  await waitIn(ana, 'name saved', () => localStorage.getItem('emberchat-name') === 'Ana' && document.getElementById('name-form').hidden);
  const bo = await openPage('bo', { name: 'Bo' });
  await waitIn(bo, 'presence lists both', () => /^2 online$/.test(document.getElementById('people-btn').textContent)
    && ['Ana', 'Bo'].every((n) => Array.from(document.querySelectorAll('#people-list li')).some((li) => li.textContent === n)));
  await waitIn(ana, 'presence lists both', () => /^2 online$/.test(document.getElementById('people-btn').textContent));

  setStep('names and times');
  const hello = `hello ${token()}`;
  await send(ana, hello);
  await waitText(bo, hello);
  const got = (await listed(bo)).find((m) => m.text === hello);
  check(got.name === 'Ana', 'name shown', `shown as ${JSON.stringify(got.name)}`);
  check(/\d{1,2}:\d{2}/.test(got.time), 'time shown', `time is ${JSON.stringify(got.time)}`);
  const day = await bo.page.$$eval('#messages li.day', (days) => days.map((d) => d.textContent));
  check(day.includes('Today'), 'day separator', `separators: ${JSON.stringify(day)}`);

  setStep('pending then confirmed');
  const mine = (await listed(ana)).find((m) => m.text === hello);
  check(mine.state === 'confirmed' && mine.id > 0, 'own message confirmed', JSON.stringify(mine));

  setStep('typing');
  // Past the gateway's limit of one notice a second per socket (sending the last message
  // was one).
  await sleep(1100);
  await ana.page.fill('#input', 'typ');
  await ana.page.type('#input', 'ing');
  await waitIn(bo, 'sees Ana typing', () => document.getElementById('typing').textContent === 'Ana is typing…');
  const anaSees = await ana.page.textContent('#typing');
  check(anaSees === '', 'typist does not see herself', `Ana sees ${JSON.stringify(anaSees)}`);
  await waitIn(bo, 'typing expires', () => document.getElementById('typing').textContent === '', null, 8_000);
  await ana.page.fill('#input', '');

  setStep('unread title');
  await bo.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await sleep(1600); // past the replay grace after connect
  await send(ana, `one ${token()}`);
  await send(ana, `two ${token()}`);
  await waitIn(bo, 'unread count in the title', () => document.title === '(2) emberchat');
  await bo.page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await waitIn(bo, 'title back when seen', () => document.title === 'emberchat');

  setStep('presence right after a reconnect');
  await bo.page.click('#toggle-btn');
  await bo.page.waitForSelector('#status[data-state="disconnected"]');
  await waitIn(ana, 'Bo gone while disconnected', () => document.getElementById('people-btn').textContent === '1 online');
  await bo.page.click('#toggle-btn');
  await waitConnected(bo.page, 'bo');
  await waitIn(bo, 'the list right after reconnecting', () => document.getElementById('people-btn').textContent === '2 online'
    && ['Ana', 'Bo'].every((n) => Array.from(document.querySelectorAll('#people-list li')).some((li) => li.textContent === n)));
  await waitIn(ana, 'Bo back', () => document.getElementById('people-btn').textContent === '2 online');

  setStep('a message sent while disconnected, and what was missed');
  // Bo's message waits in the client while it is disconnected and goes out on reconnecting,
  // when its ack and the replay of what Ana sent meanwhile race: every message must be
  // listed once, in id order.
  await bo.page.click('#toggle-btn');
  await bo.page.waitForSelector('#status[data-state="disconnected"]');
  const meanwhile = `meanwhile ${token()}`;
  for (let i = 0; i < 3; i++) await send(ana, `${meanwhile} ${i}`);
  await waitText(ana, `${meanwhile} 2`);
  const offline = `from bo offline ${token()}`;
  await send(bo, offline);
  await bo.page.click('#toggle-btn');
  await waitConnected(bo.page, 'bo');
  await waitText(bo, offline);
  for (let i = 0; i < 3; i++) await waitText(bo, `${meanwhile} ${i}`);
  let boList = (await listed(bo)).filter((m) => m.id !== null);
  check(boList.every((m, i) => i === 0 || m.id > boList[i - 1].id), 'bo: in id order', JSON.stringify(boList.map((m) => m.id)));
  check(new Set(boList.map((m) => m.id)).size === boList.length, 'bo: each once', JSON.stringify(boList.map((m) => m.id)));
  checkContiguous(boList.map((m) => m.id), 'bo: nothing skipped');

  setStep('notifications only after a click');
  check(await ana.page.evaluate(() => window.__permissionRequests) === 0, 'no permission prompt on load', 'asked without a click');
  await ana.page.click('#menu-btn');
  await ana.page.click('#notify-btn');
  await waitIn(ana, 'permission asked on click', () => window.__permissionRequests === 1);
  await ana.page.click('#menu-btn');

  setStep('screen readers');
  const announced = await bo.page.textContent('#announcer');
  check(announced.startsWith('Ana: two '), 'live message announced', `announcer says ${JSON.stringify(announced)}`);
  check(await bo.page.getAttribute('#announcer', 'aria-live') === 'polite', 'politely', 'announcer is not aria-live=polite');
  check(await bo.page.getAttribute('#messages', 'aria-live') === null, 'history not announced', '#messages is a live region');

  setStep('keyboard only');
  const typed = `keys ${token()}`;
  await bo.page.evaluate(() => document.activeElement && document.activeElement.blur());
  let focused = '';
  for (let i = 0; i < 15 && focused !== 'input'; i++) {
    await bo.page.keyboard.press('Tab');
    focused = await bo.page.evaluate(() => document.activeElement && document.activeElement.id);
  }
  check(focused === 'input', 'Tab reaches the message field', `focus stopped at ${focused}`);
  await bo.page.keyboard.type(typed);
  await bo.page.keyboard.press('Enter');
  await waitText(ana, typed);

  setStep('failed, retried, stored once');
  const stuck = `stuck ${token()}`;
  process.kill(pid, 'SIGSTOP');
  let resumed = false;
  onFinish(() => { if (!resumed) process.kill(pid, 'SIGCONT'); });
  await send(ana, stuck);
  await waitIn(ana, 'shown at once as pending', (t) => Array.from(document.querySelectorAll('#messages li.pending .text')).some((el) => el.textContent === t), stuck, 2_000);
  await waitIn(ana, 'marked failed when tries run out', (t) => Array.from(document.querySelectorAll('#messages li.failed .text')).some((el) => el.textContent === t), stuck, 20_000);
  // The retry goes out while the gateway is still stopped: it and the earlier tries reach
  // the gateway together, with one client offset.
  await ana.page.click('#messages li.failed .retry');
  process.kill(pid, 'SIGCONT');
  resumed = true;
  await waitText(ana, stuck, 15_000);
  await waitText(bo, stuck, 15_000);
  await sleep(1000);
  for (const p of [ana, bo]) {
    const copies = (await listed(p)).filter((m) => m.text === stuck);
    check(copies.length === 1 && copies[0].id > 0, `${p.label}: stored once`, JSON.stringify(copies));
  }

  setStep('one browser closes');
  await ana.context.close();
  await waitIn(bo, 'presence after Ana left', () => document.getElementById('people-btn').textContent === '1 online'
    && Array.from(document.querySelectorAll('#messages li.notice')).some((li) => li.textContent === 'Ana left'));
  noErrors(bo);
  return `names, times, presence, typing, unread, keyboard, retry: all as expected (${stuck})`;
}

// ---------------------------------------------------------------- shell
async function shell() {
  const shots = extra;
  check(!!shots, 'arguments', 'shell needs a screenshot folder');
  mkdirSync(shots, { recursive: true });
  setStep('a chat to show');
  const ana = await openPage('ana', { name: 'Ana' });
  for (const text of ['Anyone up for the makerspace tonight?', 'The laser cutter is free after 7.']) await send(ana, text);
  const bo = await openPage('bo', { name: 'Bo', viewport: { width: 320, height: 640 } });
  await send(bo, 'Count me in!');
  await waitText(bo, 'Count me in!');
  await waitText(ana, 'Count me in!');

  setStep('320 px');
  const overflow = await bo.page.evaluate(() => document.documentElement.scrollWidth);
  check(overflow <= 320, '320 px wide', `the page is ${overflow} px wide`);
  const inputBox = await bo.page.locator('#input').boundingBox();
  check(inputBox && inputBox.y + inputBox.height <= 640 && inputBox.width > 100, 'input visible at 320 px', JSON.stringify(inputBox));
  await bo.page.screenshot({ path: join(shots, 'phone.png') });
  // A phone keyboard takes the lower half (the viewport shrinks: interactive-widget).
  await bo.page.setViewportSize({ width: 320, height: 300 });
  const withKeyboard = await bo.page.locator('#input').boundingBox();
  check(withKeyboard && withKeyboard.y + withKeyboard.height <= 300, 'input above the keyboard', JSON.stringify(withKeyboard));
  await bo.page.setViewportSize({ width: 320, height: 640 });
  await ana.page.screenshot({ path: join(shots, 'desktop.png') });

  setStep('dark theme');
  const dark = await openPage('dark', { name: 'Cy', colorScheme: 'dark', viewport: { width: 390, height: 700 } });
  await waitText(dark, 'Count me in!');
  const background = await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(background === 'rgb(23, 19, 16)', 'dark theme', `background is ${background}`);
  await dark.page.screenshot({ path: join(shots, 'dark.png') });
  await dark.context.close();

  setStep('installable');
  const manifest = await ana.page.evaluate(async () => (await fetch('/manifest.webmanifest')).json());
  check(manifest.start_url === '/' && manifest.display === 'standalone' && manifest.icons.length > 0, 'manifest', JSON.stringify(manifest));

  setStep('offline shell');
  await ana.page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  // Loaded once more under the worker's control, so it has cached the shell.
  await ana.page.reload({ waitUntil: 'load' });
  await ana.page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: STEP_MS });
  await waitConnected(ana.page, 'ana');
  await ana.context.setOffline(true);
  await ana.page.reload({ waitUntil: 'load' });
  await waitIn(ana, 'opens offline and says so', () => !document.getElementById('offline').hidden
    && document.getElementById('status').dataset.state !== 'connected'
    && !!document.getElementById('input'));
  const offlineTitle = await ana.page.title();
  check(offlineTitle === 'emberchat', 'offline shell is the page', `title ${JSON.stringify(offlineTitle)}`);
  await ana.page.screenshot({ path: join(shots, 'offline.png') });
  await ana.context.setOffline(false);
  await waitIn(ana, 'reconnects by itself', () => document.getElementById('status').dataset.state === 'connected'
    && document.getElementById('offline').hidden, null, 20_000);
  await waitText(ana, 'Count me in!');
  noErrors(ana, bo);
  return `320 px, dark, installable, offline shell; screenshots in ${shots}`;
}

const scenarios = { history, people, shell };

async function main() {
  const run = scenarios[scenario];
  if (!run) throw new CheckFailed('arguments', `unknown scenario ${JSON.stringify(scenario)}`);
  setStep('launch chromium');
  await launch();
  return run();
}

runMain(main, (result) => result);
