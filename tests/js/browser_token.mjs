#!/usr/bin/env node
// The page against a gateway started with --token: it asks for the token once (a prompt),
// connects with it, chats, and after a reload connects again without asking (localStorage).
// A wrong token is asked again.
//
// usage: node browser_token.mjs URL TOKEN
// env:   CHROMIUM_PATH (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 30000)
// Exits 0 on success, 1 with the failed check on failure.

import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS, CHROMIUM_PATH, check, log, onFinish, runMain, setStep, startRun, usageError,
} from './e2e_common.mjs';

const USAGE = 'node browser_token.mjs URL TOKEN';
const { baseUrl, args } = startRun('browser_token.mjs', { usage: USAGE, defaultTimeoutMs: 30_000 });
const [token] = args;
if (!token) usageError(`no TOKEN (${USAGE})`);

let browser = null;
onFinish(() => browser?.close());

async function main() {
  setStep('launch chromium');
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const prompts = [];
  const answers = ['wrong-token', token];
  page.on('dialog', async (dialog) => {
    prompts.push(dialog.message());
    await dialog.accept(answers.shift() ?? token);
  });

  setStep('connect with the token');
  await page.goto(baseUrl);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15_000 });
  check(prompts.length === 2, 'prompts', `expected 2 prompts (wrong, then right token), got ${prompts.length}`);
  log(`asked ${prompts.length} times: ${JSON.stringify(prompts[0])}`);

  setStep('chat');
  const text = `token chat ${Date.now()}`;
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes(t) && Number(li.dataset.id) > 0),
    text, { timeout: 10_000 });
  log('message delivered with the token');

  setStep('reload');
  await page.reload();
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15_000 });
  check(prompts.length === 2, 'token remembered', `asked again after reload (${prompts.length} prompts)`);
  const shown = await page.locator('#messages li', { hasText: text }).count();
  check(shown === 1, 'history after reload', `shows the message ${shown} times`);
  check(errors.length === 0, 'page errors', errors.join('; '));
}

runMain(main, () => 'asked once, remembered after reload');
