#!/usr/bin/env node
// Exactly once across a server-side close, with socket.io-client 4.8.1.
//
// usage: node across_close.mjs URL TRANSPORT
//
// One client as the Socket.IO tutorial writes it (auth.serverOffset follows every
// message, reconnection on) on TRANSPORT ("polling" or "websocket") receives
// 'chat message's while the harness closes the server under it (SIGTERM, with
// messages still queued) and starts it again on the same address and database.
// It prints "connected" on stdout at each connect. The harness then writes the
// total number of stored messages, N, as a line on stdin once it is final; the
// client must end up with ids 1..N, each once, in increasing order. Exits 0 on
// success, 1 on failure (a duplicate, a gap, a wrong order, or a timeout).

import { createInterface } from 'node:readline';
import { check, makeClient, runMain, setStep, sleep, startRun, usageError } from './e2e_common.mjs';

const USAGE = 'node across_close.mjs URL TRANSPORT';
const { baseUrl, args } = startRun('across_close.mjs', { usage: USAGE, defaultTimeoutMs: 60_000, stderrLog: true });
const [transport] = args;
if (transport !== 'polling' && transport !== 'websocket') usageError(`TRANSPORT must be polling or websocket (${USAGE})`);

const ids = [];
let expected = null;

const client = makeClient(baseUrl, transport, {
  record: false,
  transports: [transport],
  reconnection: true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
  onMessage: (_text, id) => ids.push(id),
});
client.socket.on('connect', () => console.log('connected'));

createInterface({ input: process.stdin }).on('line', (line) => {
  expected = Number(line.trim());
});

async function main() {
  setStep('receive');
  // Messages are not recorded as client events here, so look every 20 ms.
  const deadline = Date.now() + 50_000;
  while (expected === null || ids.length < expected) {
    check(Date.now() < deadline, 'all messages', () => `timed out with ${ids.length} of ${expected}`);
    await sleep(20);
  }
  // A duplicate would come right after the last one: wait a little for it.
  await sleep(500);
  const seen = new Set();
  for (let i = 0; i < ids.length; i++) {
    check(!seen.has(ids[i]), 'no duplicates', () => `id ${ids[i]} received twice (at ${i})`);
    seen.add(ids[i]);
    check(i === 0 || ids[i] > ids[i - 1], 'id order', () => `id ${ids[i]} after ${ids[i - 1]}`);
  }
  check(ids.length === expected, 'all of them', () => `${ids.length} received, ${expected} stored`);
  check(ids[0] === 1 && ids[ids.length - 1] === expected, 'ids 1..N', () => `first ${ids[0]}, last ${ids[ids.length - 1]}`);
  return { count: ids.length, connects: client.connects.length, disconnects: client.disconnects };
}

runMain(main, ({ count, connects, disconnects }) => `${count} messages once each over ${transport}, ${connects} connects (disconnects: ${disconnects.join(', ')})`);
