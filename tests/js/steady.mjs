#!/usr/bin/env node
// A steady sender that retries what the server could not store, as a chat client should,
// with socket.io-client 4.8.1: for fault tests (the harness restarts Redis or kills a
// gateway meanwhile).
//
// usage: node steady.mjs URL OUTFILE [COUNT=600] [INTERVAL_MS=5]
//
// Sends 'chat message' "steady-<i>" with client offset "steady-<i>", one every INTERVAL_MS,
// each with an ack. A message refused with an error ack, or not acked within 3 s, is sent
// again (same text, same offset) after 200 ms, until it is acked. The client reconnects by
// itself when its connection drops. Each acked text is appended to OUTFILE (truncated at
// start). Exits 0 once all COUNT are acked, 1 on the overall timeout (E2E_TIMEOUT_MS,
// default 60000).

import { appendFileSync, writeFileSync } from 'node:fs';
import { finish, log, makeClient, setStep, startRun, usageError, waitConnected } from './e2e_common.mjs';

const USAGE = 'node steady.mjs URL OUTFILE [COUNT=600] [INTERVAL_MS=5]';
const { baseUrl, args } = startRun('steady.mjs', { usage: USAGE, defaultTimeoutMs: 60_000 });
const [outFile, countArg = '600', intervalArg = '5'] = args;
const COUNT = Number(countArg);
const INTERVAL_MS = Number(intervalArg);
if (!outFile || !Number.isInteger(COUNT) || COUNT < 1 || !(INTERVAL_MS >= 0)) usageError(USAGE);

const acked = new Set();
let retries = 0;

function send(client, i) {
  const text = `steady-${i}`;
  client.socket.timeout(3000).emit('chat message', text, text, (err, ...ackArgs) => {
    if (acked.has(text)) return;
    if (err || ackArgs.some((a) => a !== null && a !== undefined)) {
      retries += 1;
      setTimeout(() => send(client, i), 200);
      return;
    }
    acked.add(text);
    appendFileSync(outFile, `${text}\n`);
    if (acked.size === COUNT) {
      finish(0, `steady.mjs: all ${COUNT} acknowledged, ${retries} retries`);
    }
  });
}

async function main() {
  writeFileSync(outFile, '');
  setStep('connect');
  const client = makeClient(baseUrl, 'steady', { record: false, reconnection: true, reconnectionDelay: 100 });
  await waitConnected(client);
  setStep('send');
  for (let i = 0; i < COUNT; i++) {
    send(client, i);
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }
  log(`all ${COUNT} sent; waiting for their acks`);
}

main().catch((err) => finish(1, `steady.mjs: ${err.message}`));
