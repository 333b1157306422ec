#!/usr/bin/env node
// Several gateways on one Redis stream (cluster mode), with socket.io-client 4.8.1.
//
// usage: node cluster.mjs URL [URL...]
//
// 1. On each gateway a client sends MESSAGES acknowledged messages (with client offsets)
//    at once, while every client listens. Every client must receive every message once, as
//    ('chat message', text, offset) with a stream id "<ms>-<seq>" as the offset, in the same
//    order (ids increasing) on every gateway.
// 2. The same client offset sent through the first and the second gateway: both acked,
//    stored and broadcast once.
// 3. A late client on the last gateway with auth.serverOffset = the id of the first
//    message gets exactly the messages after it, in order, and the same ids.
// Prints one JSON line {ids} (the order seen). Exits 0 on success, 1 on failure.

import {
  STEP_TIMEOUT_MS, check, log, makeClient, runMain, sendAcked, setStep, sleep, startRun, token,
  usageError, waitConnected, waitUntil,
} from './e2e_common.mjs';

const MESSAGES = 20;
const { baseUrl, args } = startRun('cluster.mjs', { usage: 'node cluster.mjs URL [URL...]' });
const urls = [baseUrl, ...args];
if (urls.length < 2) usageError('give at least two gateways');

const ID = /^(\d+)-(\d+)$/;
function compareIds(a, b) {
  const [, am, as] = ID.exec(a);
  const [, bm, bs] = ID.exec(b);
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

// The run's messages a client received: [{text, id}], checked for shape.
function received(client, run) {
  return client.events
    .filter((e) => typeof e.text === 'string' && e.text.includes(run))
    .map((e) => {
      check(
        e.args.length === 2 && typeof e.id === 'string' && ID.test(e.id),
        `${client.name} event shape`,
        () => `expected ('chat message', text, "<ms>-<seq>"), got ${JSON.stringify(e.args)}`,
      );
      return { text: e.text, id: e.id };
    });
}

async function main() {
  const run = token();
  setStep('connect');
  const clients = urls.map((url, i) => makeClient(url, `G${i + 1}`, { auth: { serverOffset: '0-0' } }));
  await Promise.all(clients.map((c) => waitConnected(c)));
  // Let each gateway's tail start before anything is sent (it starts at the stream's end).
  await sleep(300);

  setStep('send on every gateway');
  const texts = [];
  await Promise.all(
    clients.map(async (client, g) => {
      const sends = [];
      for (let i = 0; i < MESSAGES; i++) {
        const text = `cluster ${run} g${g + 1} #${i}`;
        texts.push(text);
        sends.push(sendAcked(client, text, `${run}-g${g + 1}-${i}`));
      }
      await Promise.all(sends);
    }),
  );
  const total = texts.length;
  for (const client of clients) {
    await waitUntil(
      () => received(client, run).length >= total,
      STEP_TIMEOUT_MS,
      `${client.name} receives ${total} messages`,
      () => `has ${received(client, run).length}`,
    );
  }
  await sleep(300);
  const orders = clients.map((c) => received(c, run));
  const first = orders[0];
  check(first.length === total, 'exactly once', () => `${clients[0].name} got ${first.length} of ${total}`);
  check(
    new Set(first.map((m) => m.text)).size === total && texts.every((t) => first.some((m) => m.text === t)),
    'every message',
    () => 'a message is missing or repeated',
  );
  for (let i = 1; i < first.length; i++) {
    check(compareIds(first[i - 1].id, first[i].id) < 0, 'ids increase', () => `${first[i - 1].id} then ${first[i].id}`);
  }
  orders.forEach((order, g) => {
    check(
      JSON.stringify(order) === JSON.stringify(first),
      'one order on every gateway',
      () => `${clients[g].name} saw ${JSON.stringify(order.slice(0, 5))}… where ${clients[0].name} saw ${JSON.stringify(first.slice(0, 5))}…`,
    );
  });
  log(`${total} messages, one order on ${clients.length} gateways`);

  setStep('one client offset through two gateways');
  const twice = `cluster ${run} twice`;
  await sendAcked(clients[0], twice, `${run}-twice`);
  await sendAcked(clients[1], twice, `${run}-twice`);
  await sleep(500);
  for (const client of clients) {
    const copies = received(client, run).filter((m) => m.text === twice).length;
    check(copies === 1, 'stored once', () => `${client.name} received it ${copies} times`);
  }

  setStep('replay after an offset');
  const last = clients.length - 1;
  const late = makeClient(urls[last], 'late', { auth: { serverOffset: first[0].id } });
  await waitConnected(late);
  const expected = [...first.slice(1).map((m) => m.id), received(clients[0], run).find((m) => m.text === twice).id];
  await waitUntil(
    () => received(late, run).length >= expected.length,
    STEP_TIMEOUT_MS,
    `late receives ${expected.length}`,
    () => `has ${received(late, run).length}`,
  );
  await sleep(300);
  const replayed = received(late, run).map((m) => m.id);
  check(
    JSON.stringify(replayed) === JSON.stringify(expected),
    'replay after the offset',
    () => `got ${JSON.stringify(replayed)}, expected ${JSON.stringify(expected)}`,
  );
  process.stdout.write(`${JSON.stringify({ ids: first.map((m) => m.id) })}\n`);
}

runMain(main, () => 'cluster.mjs: one order, stored once, replay by stream id');
