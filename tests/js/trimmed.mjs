#!/usr/bin/env node
// A client whose offset is older than what the server still keeps, with socket.io-client
// 4.8.1: it gets what remains, and the page's protocol says that some is gone.
//
// usage: node trimmed.mjs URL OFFSET
//
// A tutorial client with auth.serverOffset = OFFSET listens until nothing has come for
// 500 ms; a page client (auth.emberchat, newest 10) with the same offset records the
// 'missed' notice and what is replayed. Prints one JSON line
// {"tutorial": [ids...], "missed": {...} | null, "page": count}.

import { check, makeClient, runMain, setStep, sleep, startRun, usageError, waitConnected } from './e2e_common.mjs';

const { baseUrl, args } = startRun('trimmed.mjs', { usage: 'node trimmed.mjs URL OFFSET' });
const [offset] = args;
if (!offset) usageError('OFFSET missing');

async function main() {
  setStep('tutorial client');
  const tutorial = makeClient(baseUrl, 'tutorial', { auth: { serverOffset: offset } });
  await waitConnected(tutorial);
  let count = -1;
  while (tutorial.events.length !== count) {
    count = tutorial.events.length;
    await sleep(500);
  }
  setStep('page client');
  let missed = null;
  const page = makeClient(baseUrl, 'page', {
    tutorial: false,
    auth: { serverOffset: offset, emberchat: 1, newest: 10 },
  });
  page.socket.on('missed', (notice) => {
    missed = notice;
  });
  await waitConnected(page);
  await sleep(700);
  check(tutorial.socket.connected && page.socket.connected, 'connected', 'a client dropped');
  process.stdout.write(`${JSON.stringify({ tutorial: tutorial.events.map((e) => e.id), missed, page: page.events.length })}\n`);
  return tutorial.events.length;
}

runMain(main, (n) => `${n} message(s) after a trimmed offset`);
