#!/usr/bin/env node
// Several gateways on one Redis stream (cluster mode), with socket.io-client 4.8.1.
//
// usage: node cluster.mjs URL [URL...]
//
// A URL written node=URL is a Node socket.io server with socket.io's Redis Streams adapter on
// the same stream (node_cluster_server.mjs); the others are emberchat gateways (at least two).
// 1. Through each server a client sends MESSAGES acknowledged messages (with client offsets)
//    at once, while every client listens. Every client must receive every message once, as
//    ('chat message', text, offset) with a stream id "<ms>-<seq>" as the offset, each message
//    with the same id everywhere, in the same order (ids increasing) on every gateway. A Node
//    server delivers its own messages to its clients as soon as Redis has them, before older
//    entries from others reach it, so its clients' order is reported, not required.
// 2. One message at a time through each server in turn: every client, Node's too, in the
//    same order.
// A Node server's serverCount() and fetchSockets() count Node servers only, at once
// (gateways do not join its pub/sub requests, so nothing waits for them).
// 3. The same client offset sent through two gateways: both acked, stored and broadcast once.
// 4. A late client on the last gateway with auth.serverOffset = the id of the first
//    message gets exactly the messages after it, in order, and the same ids.
// Prints one JSON line {ids} (the order seen). Exits 0 on success, 1 on failure.

import {
  STEP_TIMEOUT_MS, check, log, makeClient, runMain, sendAcked, setStep, sleep, startRun, token,
  usageError, waitConnected, waitUntil,
} from './e2e_common.mjs';

const MESSAGES = 20;
const { baseUrl, args } = startRun('cluster.mjs', { usage: 'node cluster.mjs URL [node=URL...]' });
const servers = [baseUrl, ...args].map((url) =>
  url.startsWith('node=') ? { url: url.slice(5), node: true } : { url, node: false },
);
const gateways = servers.filter((s) => !s.node);
if (gateways.length < 2) usageError('give at least two emberchat gateways');

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
  const clients = servers.map((server, i) => {
    const client = makeClient(server.url, `${server.node ? 'N' : 'G'}${i + 1}`, { auth: { serverOffset: '0-0' } });
    client.node = server.node;
    return client;
  });
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
  const idOf = new Map(first.map((m) => [m.text, m.id]));
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
    check(order.length === total, 'exactly once', () => `${clients[g].name} got ${order.length} of ${total}`);
    for (const m of order) {
      check(idOf.get(m.text) === m.id, 'one id per message', () => `${clients[g].name} got ${m.text} as ${m.id}, ${clients[0].name} as ${idOf.get(m.text)}`);
    }
    const same = JSON.stringify(order) === JSON.stringify(first);
    if (clients[g].node) {
      log(`${clients[g].name} (Node): ${same ? 'the same order' : 'its own messages earlier than the stream order'}`);
    } else {
      check(same, 'one order on every gateway', () => `${clients[g].name} saw ${JSON.stringify(order.slice(0, 5))}… where ${clients[0].name} saw ${JSON.stringify(first.slice(0, 5))}…`);
    }
  });
  log(`${total} messages, one id each and one order on ${gateways.length} gateways`);

  setStep('one at a time through each server');
  const turns = [];
  for (let round = 0; round < 2; round++) {
    for (const client of clients) {
      const text = `cluster ${run} turn ${round} ${client.name}`;
      turns.push(text);
      await sendAcked(client, text, `${run}-turn-${round}-${client.name}`);
      for (const other of clients) {
        await waitUntil(() => received(other, run).some((m) => m.text === text), STEP_TIMEOUT_MS, `${other.name} receives ${text}`);
      }
    }
  }
  const turnOrder = (client) => received(client, run).filter((m) => turns.includes(m.text));
  for (const client of clients) {
    check(
      JSON.stringify(turnOrder(client)) === JSON.stringify(turnOrder(clients[0])),
      'one order, Node servers included',
      () => `${client.name} saw ${JSON.stringify(turnOrder(client))}`,
    );
  }

  setStep('what a Node server sees of the cluster');
  for (const client of clients.filter((c) => c.node)) {
    const info = await client.socket.timeout(STEP_TIMEOUT_MS).emitWithAck('cluster info');
    log(`${client.name} (Node): ${JSON.stringify(info)}`);
    const nodeServers = clients.filter((c) => c.node).length;
    check(info.serverCount === nodeServers, 'serverCount', () => `${JSON.stringify(info)}: gateways are not counted, Node servers are`);
    check(info.sockets === nodeServers, 'fetchSockets', () => `${JSON.stringify(info)}: the Node servers' own sockets`);
    check(info.ms < 4000, 'fetchSockets does not wait for gateways', () => JSON.stringify(info));
  }

  setStep('one client offset through two gateways');
  const twice = `cluster ${run} twice`;
  const [one, two] = clients.filter((c) => !c.node);
  await sendAcked(one, twice, `${run}-twice`);
  await sendAcked(two, twice, `${run}-twice`);
  await sleep(500);
  for (const client of clients) {
    const copies = received(client, run).filter((m) => m.text === twice).length;
    check(copies === 1, 'stored once', () => `${client.name} received it ${copies} times`);
  }

  setStep('replay after an offset');
  const late = makeClient(gateways[gateways.length - 1].url, 'late', { auth: { serverOffset: first[0].id } });
  await waitConnected(late);
  const all = received(clients.find((c) => !c.node), run);
  const expected = all.slice(all.findIndex((m) => m.id === first[0].id) + 1).map((m) => m.id);
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
