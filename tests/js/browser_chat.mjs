#!/usr/bin/env node
// Drives the chat page in two headless Chromium pages (Debian's /usr/bin/chromium
// through playwright-core) and checks that a message typed in one shows up in
// the other, rendered as text, with its numeric id.
//
// usage: node browser_chat.mjs BASE_URL [SCREENSHOT.png]
// env:   CHROMIUM_PATH (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 30000),
//        E2E_SECOND_URL: where the second page opens (another gateway of a cluster;
//        default BASE_URL)

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

const { baseUrl, args } = startRun('browser_chat', { usage: 'node browser_chat.mjs BASE_URL [SCREENSHOT.png]', defaultTimeoutMs: 30_000 });
const [screenshotPath] = args;
const pageUrl = new URL('/', baseUrl).href;
const secondPageUrl = new URL('/', process.env.E2E_SECOND_URL || baseUrl).href;

let browser = null;
onFinish(() => browser?.close());

// ---------------------------------------------------------------- helpers
async function openChatPage(context, name, url = pageUrl) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => {
    pageErrors.push(err.message);
    log(`${name}: page error: ${err.message}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const where = msg.location()?.url;
      log(`${name}: console error: ${msg.text()}${where ? ` [${where}]` : ''}`);
    }
  });
  page.on('requestfailed', (req) => {
    // noted only: the checks below decide
    log(`${name}: request failed: ${req.url()} (${req.failure()?.errorText})`);
  });

  let response;
  try {
    response = await page.goto(url, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
  } catch (e) {
    throw new CheckFailed(`${name} GET /`, String(e.message).split('\n')[0]);
  }
  check(response !== null, `${name} GET /`, 'no response');
  check(response.ok(), `${name} GET /`, `HTTP ${response.status()} ${response.statusText()}`);

  for (const sel of ['#messages', '#form', '#input', '#toggle-btn', '#status']) {
    check((await page.locator(sel).count()) === 1, `${name} page structure`, `expected exactly one ${sel}`);
  }
  return { page, name, pageErrors };
}

async function waitStatus({ page, name }, state) {
  try {
    await page.waitForSelector(`#status[data-state="${state}"]`, { timeout: STEP_TIMEOUT_MS });
  } catch {
    const now = await page
      .$eval('#status', (el) => `data-state=${el.dataset.state} text=${JSON.stringify(el.textContent)}`)
      .catch((e) => `unreadable (${e.message})`);
    throw new CheckFailed(`${name} status`, `did not become "${state}" within ${STEP_TIMEOUT_MS} ms; status is ${now}`);
  }
  const text = (await page.textContent('#status')).trim().toLowerCase();
  check(text === state, `${name} status text`, `status pill says ${JSON.stringify(text)}, expected "${state}"`);
}

async function sendFromPage({ page, name }, text) {
  await page.fill('#input', text);
  const submit = page.locator('#form [type="submit"]');
  if ((await submit.count()) > 0) {
    await submit.first().click();
  } else {
    await page.$eval('#form', (form) => form.requestSubmit());
  }
  // the tutorial clears the input after emitting
  await page.waitForFunction(() => document.getElementById('input').value === '', null, {
    timeout: STEP_TIMEOUT_MS,
  });
  log(`${name}: sent ${JSON.stringify(text)}`);
}

// waits for an <li> in #messages whose text contains `text`; returns its details
async function waitForMessage({ page, name }, text) {
  try {
    await page.waitForFunction(
      (t) => Array.from(document.querySelectorAll('#messages li')).some((li) => li.textContent.includes(t)),
      text,
      { timeout: STEP_TIMEOUT_MS },
    );
  } catch {
    const last = await page
      .$$eval('#messages li', (lis) => lis.slice(-3).map((li) => li.textContent))
      .catch(() => []);
    throw new CheckFailed(
      `${name} receives message`,
      `no #messages li containing ${JSON.stringify(text)} within ${STEP_TIMEOUT_MS} ms; last items: ${JSON.stringify(last)}`,
    );
  }
  return page.$$eval(
    '#messages li',
    (lis, t) => {
      const matches = lis.filter((li) => li.textContent.includes(t));
      const li = matches[0];
      return {
        count: matches.length,
        id: li.getAttribute('data-id'),
        text: li.textContent,
        visibleText: li.innerText,
        elementChildren: Array.from(li.querySelectorAll('*')).map((el) => el.tagName.toLowerCase()),
      };
    },
    text,
  );
}

function checkIdShown(info, name, text) {
  check(
    info.id !== null && /^[1-9][0-9]*$/.test(info.id),
    `${name} message id`,
    `li for ${JSON.stringify(text)} has data-id=${JSON.stringify(info.id)}, expected a positive integer`,
  );
  check(
    info.visibleText.includes(info.id),
    `${name} message id visible`,
    `li shows ${JSON.stringify(info.visibleText)}, which does not include its id ${info.id}`,
  );
  check(info.count === 1, `${name} no duplicates`, `message ${JSON.stringify(text)} is listed ${info.count} times`);
}

// ---------------------------------------------------------------- test
async function main() {
  log(`browser_chat against ${pageUrl} with ${CHROMIUM_PATH}`);
  const token = randomBytes(6).toString('hex');

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

  // two separate contexts = two independent users, on a phone-sized screen
  const contextOptions = {
    viewport: { width: 390, height: 760 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  };
  const ctx1 = await browser.newContext(contextOptions);
  const ctx2 = await browser.newContext(contextOptions);

  setStep('open pages');
  const p1 = await openChatPage(ctx1, 'page1');
  const p2 = await openChatPage(ctx2, 'page2', secondPageUrl);

  setStep('wait connected');
  await Promise.all([waitStatus(p1, 'connected'), waitStatus(p2, 'connected')]);
  log('both pages show "connected"');

  setStep('plain message');
  const plain = `hello from the browser ${token} ✓`;
  await sendFromPage(p1, plain);
  const got2 = await waitForMessage(p2, plain);
  checkIdShown(got2, 'page2', plain);
  const got1 = await waitForMessage(p1, plain);
  checkIdShown(got1, 'page1', plain);
  check(
    got1.id === got2.id,
    'same id on both pages',
    `page1 shows #${got1.id}, page2 shows #${got2.id}`,
  );
  log(`page2 shows the message with id #${got2.id}`);

  setStep('markup is rendered as text');
  const probe = `<img src=x onerror="window.__xss=1"> ${token}`;
  await sendFromPage(p1, probe);
  const gotProbe = await waitForMessage(p2, probe);
  checkIdShown(gotProbe, 'page2', probe);
  check(
    !gotProbe.elementChildren.includes('img'),
    'page2 escapes markup',
    `the message was parsed as HTML (li contains <${gotProbe.elementChildren.join('>, <')}>)`,
  );
  check(
    gotProbe.visibleText.includes(probe),
    'page2 shows markup literally',
    `li text is ${JSON.stringify(gotProbe.visibleText)}`,
  );
  await sleep(500); // give an injected onerror handler time to run, if there were one
  for (const p of [p1, p2]) {
    const imgs = await p.page.locator('#messages img').count();
    check(imgs === 0, `${p.name} escapes markup`, `found ${imgs} <img> element(s) inside #messages`);
    const xss = await p.page.evaluate(() => typeof window.__xss);
    check(xss === 'undefined', `${p.name} no script execution`, `window.__xss is ${xss}: the payload ran`);
  }
  log('markup shown literally, window.__xss undefined');

  setStep('toggle button');
  await p2.page.click('#toggle-btn');
  await waitStatus(p2, 'disconnected');
  log('page2: toggle -> "disconnected"');
  await p2.page.click('#toggle-btn');
  await waitStatus(p2, 'connected');
  log('page2: toggle -> "connected" again');
  const afterReconnect = `after reconnect ${token}`;
  await sendFromPage(p1, afterReconnect);
  const gotAfter = await waitForMessage(p2, afterReconnect);
  checkIdShown(gotAfter, 'page2', afterReconnect);
  check(
    Number(gotAfter.id) > Number(got2.id),
    'ids increase',
    `message sent later got id #${gotAfter.id}, not above #${got2.id}`,
  );
  log(`page2 receives again after reconnecting (#${gotAfter.id})`);

  setStep('page errors');
  for (const p of [p1, p2]) {
    check(p.pageErrors.length === 0, `${p.name} no JS errors`, p.pageErrors.join(' | '));
  }

  if (screenshotPath) {
    setStep('screenshot');
    await p2.page.screenshot({ path: screenshotPath });
    log(`screenshot of page2 written to ${screenshotPath}`);
  }
}

runMain(main, () => `message delivered between two pages, rendered as text, with id`);
