#!/usr/bin/env node
// Dumps the server's history, with socket.io-client 4.8.1.
//
// usage: node collect.mjs URL [QUIET_MS=1000]
//
// Connects with {serverOffset: 0} and, once no message has arrived for QUIET_MS
// (or at the overall timeout, env E2E_TIMEOUT_MS, default 30000), prints the
// messages received as ONE JSON line on stdout: [[id, text], ...] in receive
// order. The log goes to stderr. Exits 0 (also on the overall timeout, with what
// it has), 1 if it cannot connect or the connection drops before the end.

import { check, finish, log, makeClient, runMain, setStep, startRun, usageError, waitConnected } from './e2e_common.mjs';

const received = [];
let printed = false;
function printResult() {
  if (printed) return;
  printed = true;
  process.stdout.write(`${JSON.stringify(received)}\n`);
}

const { baseUrl, args } = startRun('collect.mjs', {
  usage: 'node collect.mjs URL [QUIET_MS=1000]',
  defaultTimeoutMs: 30_000,
  stderrLog: true,
  onTimeout: (ms) => {
    log(`overall timeout after ${ms} ms: printing the ${received.length} message(s) received so far`);
    printResult();
    finish(0, `collect.mjs: ${received.length} message(s) (overall timeout reached)`);
  },
});
const QUIET_MS = Number(args[0] ?? 1000);
if (!Number.isFinite(QUIET_MS) || QUIET_MS < 0) usageError('QUIET_MS must be a non-negative number');

async function main() {
  let lastAt = Date.now();
  setStep('connect');
  const c = makeClient(baseUrl, 'collector', {
    auth: { serverOffset: 0 },
    record: false,
    onMessage: (text, id) => {
      received.push([id, text]);
      lastAt = Date.now();
    },
  });
  await waitConnected(c);
  lastAt = Date.now();
  setStep('collect');
  await new Promise((resolve) => {
    const t = setInterval(() => {
      if (Date.now() - lastAt >= QUIET_MS || !c.socket.connected) {
        clearInterval(t);
        resolve();
      }
    }, 50);
  });
  check(c.socket.connected, 'collector stays connected', () => `disconnected (${c.disconnects.at(-1)}) after ${received.length} message(s)`);
  printResult();
  return received.length;
}

runMain(main, (n) => `${n} message(s) collected`);
