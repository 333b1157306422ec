#!/usr/bin/env node
// The page against a gateway started with --token: it asks for the token once (a prompt),
// connects with it, chats, and after a reload connects again without asking (localStorage).
// A wrong token is asked again.
//
// usage: node browser_token.mjs URL TOKEN
// Exits 0 on success, 1 with the failed check on failure.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './e2e_common.mjs';

const [url, token] = process.argv.slice(2);
const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS) || 30_000;
const timer = setTimeout(() => fail('overall timeout'), TIMEOUT_MS);
let browser;

function fail(message) {
  console.error(`FAIL browser_token: ${message}`);
  Promise.resolve(browser && browser.close()).finally(() => process.exit(1));
}

async function main() {
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

  await page.goto(url);
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15_000 });
  if (prompts.length !== 2) fail(`expected 2 prompts (wrong, then right token), got ${prompts.length}`);
  console.log(`asked ${prompts.length} times: ${JSON.stringify(prompts[0])}`);

  const text = `token chat ${Date.now()}`;
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('#messages li')].some((li) => li.textContent.includes(t) && Number(li.dataset.id) > 0),
    text, { timeout: 10_000 });
  console.log('message delivered with the token');

  await page.reload();
  await page.waitForSelector('#status[data-state="connected"]', { timeout: 15_000 });
  if (prompts.length !== 2) fail(`asked again after reload (${prompts.length} prompts)`);
  const shown = await page.locator('#messages li', { hasText: text }).count();
  if (shown !== 1) fail(`history after reload shows the message ${shown} times`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  console.log('PASS browser_token: asked once, remembered after reload');
  await browser.close();
  clearTimeout(timer);
}

main().catch((e) => fail(e.stack || String(e)));
