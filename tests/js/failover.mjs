#!/usr/bin/env node
// A client that moves to another gateway when its own dies (cluster mode), with
// socket.io-client 4.8.1.
//
// usage: node failover.mjs URL_A URL_B COUNT
//
// Connects to gateway A as the tutorial's client does (auth.serverOffset follows the ids
// it receives) and listens. When A goes away (the harness kills it), it connects to gateway
// B with its last offset and listens until it has COUNT messages "steady-<i>" in all (or the
// overall timeout). Prints the messages received on both, in order, as one JSON line
// [[id, text], ...] and how many came from each gateway on stderr.

import { check, finish, log, makeClient, setStep, startRun, usageError, waitConnected, waitUntil } from './e2e_common.mjs';

const { baseUrl, args } = startRun('failover.mjs', {
  usage: 'node failover.mjs URL_A URL_B COUNT',
  defaultTimeoutMs: 60_000,
  stderrLog: true,
});
const [urlB, countArg] = args;
const COUNT = Number(countArg);
if (!urlB || !Number.isInteger(COUNT) || COUNT < 1) usageError('URL_B and COUNT needed');

const received = [];
let lastId = '0-0';

function listen(url, name) {
  return makeClient(url, name, {
    auth: { serverOffset: lastId },
    // Recorded too, so that waiting is woken by each message.
    onMessage: (text, id) => {
      if (typeof text === 'string' && text.startsWith('steady-')) received.push([id, text]);
      lastId = id;
    },
  });
}

async function main() {
  setStep('listen on A');
  const a = listen(baseUrl, 'A');
  await waitConnected(a);
  await waitUntil(() => !a.socket.connected, 50_000, 'gateway A goes away');
  const onA = received.length;
  log(`A went away after ${onA} message(s); moving to B from ${lastId}`);
  setStep('listen on B');
  const b = listen(urlB, 'B');
  await waitConnected(b);
  await waitUntil(
    () => new Set(received.map(([, text]) => text)).size >= COUNT,
    30_000,
    `B brings the total to ${COUNT}`,
    () => {
      const seen = new Map();
      const twice = [];
      received.forEach(([id, text], i) => {
        if (seen.has(text)) twice.push(`${text} as ${seen.get(text)} and ${id} (#${i}, ${i < onA ? 'A' : 'B'})`);
        else seen.set(text, id);
      });
      return `${received.length} received, ${seen.size} distinct; twice: ${twice.slice(0, 5).join('; ')}`;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  check(b.socket.connected, 'B stays connected', () => 'disconnected');
  log(`${onA} on A, ${received.length - onA} on B`);
  process.stdout.write(`${JSON.stringify(received)}\n`);
  return received.length;
}

main().then(
  (n) => finish(0, `failover.mjs: ${n} message(s)`),
  (err) => finish(1, `failover.mjs: ${err.message}`),
);
