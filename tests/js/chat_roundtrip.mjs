#!/usr/bin/env node
// End-to-end check of the `chat message` round trip with the official
// Socket.IO client (socket.io-client 4.8.1).
//
// usage: node chat_roundtrip.mjs BASE_URL [default|websocket|polling]
//
// Two clients A and B connect; A sends three messages with an acknowledgement;
// both must receive each one as ('chat message', text, id) with the same
// positive integer id, ids strictly increasing. Exits 0 on success, 1 on failure.

import { randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';

const OVERALL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS) || 20_000;
const STEP_TIMEOUT_MS = 5_000;
const MODES = ['default', 'websocket', 'polling'];

const started = Date.now();
let step = 'start';
const clients = [];

function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(2).padStart(6);
  console.log(`[${t}s]`, ...args);
}

class CheckFailed extends Error {
  constructor(check, detail) {
    super(`${check}: ${detail}`);
    this.check = check;
    this.detail = detail;
  }
}

function check(cond, name, detail) {
  if (!cond) throw new CheckFailed(name, detail);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closeAll() {
  for (const c of clients) {
    try {
      c.socket.disconnect();
    } catch {
      // ignore: we are tearing down
    }
  }
}

async function finish(code, message) {
  clearTimeout(overallTimer);
  if (code === 0) log(`PASS ${message}`);
  else console.error(`FAIL ${message}`);
  closeAll();
  await sleep(100); // let close packets flush
  process.exit(code);
}

// ---------------------------------------------------------------- arguments
const [baseUrl, mode = 'default'] = process.argv.slice(2);
if (!baseUrl || !MODES.includes(mode)) {
  console.error(`usage: node chat_roundtrip.mjs BASE_URL [${MODES.join('|')}]`);
  process.exit(1);
}
try {
  const u = new URL(baseUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
} catch (e) {
  console.error(`FAIL arguments: bad BASE_URL ${JSON.stringify(baseUrl)} (${e.message})`);
  process.exit(1);
}

const overallTimer = setTimeout(() => {
  finish(1, `overall timeout: no result after ${OVERALL_TIMEOUT_MS} ms (stuck at step: ${step})`);
}, OVERALL_TIMEOUT_MS);

process.on('unhandledRejection', (err) => {
  finish(1, `unexpected error at step ${step}: ${err?.stack || err}`);
});

// ---------------------------------------------------------------- helpers
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(what, `timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err) {
  if (!err) return String(err);
  const parts = [err.message || String(err)];
  if (err.description !== undefined) {
    const d = err.description;
    parts.push(`description=${d?.message ?? (typeof d === 'object' ? JSON.stringify(d) : d)}`);
  }
  if (err.context?.status) parts.push(`http status=${err.context.status}`);
  if (err.data !== undefined) parts.push(`data=${JSON.stringify(err.data)}`);
  return parts.join(', ');
}

function makeClient(name) {
  const opts = {
    auth: { serverOffset: 0 },
    forceNew: true, // separate Engine.IO connection per client
    reconnection: false, // a failure must surface, not be retried away
    timeout: STEP_TIMEOUT_MS,
  };
  if (mode === 'websocket') opts.transports = ['websocket'];
  if (mode === 'polling') opts.transports = ['polling'];

  const socket = io(baseUrl, opts);
  const client = {
    name,
    socket,
    events: [], // every 'chat message' received, as argument arrays
    upgrades: [], // transport names we upgraded to
    disconnectReason: null,
    onEvent: null,
  };
  socket.on('chat message', (...args) => {
    client.events.push(args);
    client.onEvent?.();
  });
  socket.on('disconnect', (reason) => {
    client.disconnectReason = reason;
    log(`${name}: disconnected (${reason})`);
  });
  socket.io.engine?.on('upgrade', (transport) => client.upgrades.push(transport.name));
  clients.push(client);
  return client;
}

function waitConnected(client) {
  const { socket, name } = client;
  if (socket.connected) return Promise.resolve();
  return withTimeout(
    new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (err) =>
        reject(new CheckFailed(`${name} connect`, `connect_error: ${describeError(err)}`)),
      );
    }),
    STEP_TIMEOUT_MS,
    `${name} connect`,
  );
}

function waitUpgrade(client) {
  const engine = client.socket.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return withTimeout(
    new Promise((resolve, reject) => {
      engine.once('upgrade', resolve);
      engine.once('upgradeError', (err) =>
        reject(new CheckFailed(`${client.name} upgrade`, `upgradeError: ${describeError(err)}`)),
      );
    }),
    STEP_TIMEOUT_MS,
    `${client.name} upgrade to websocket`,
  );
}

// events of this run only (the DB may hold older messages, which may be replayed)
function ownEvents(client, texts) {
  return client.events.filter((args) => texts.includes(args[0]));
}

function waitForAll(client, texts, token) {
  const done = () => texts.every((t) => client.events.some((args) => args[0] === t));
  if (done()) return Promise.resolve();
  return withTimeout(
    new Promise((resolve) => {
      client.onEvent = () => {
        if (done()) {
          client.onEvent = null;
          resolve();
        }
      };
    }),
    STEP_TIMEOUT_MS,
    `${client.name} receives all ${texts.length} messages`,
  ).catch((err) => {
    const got = ownEvents(client, texts).map((a) => a[0]);
    const missing = texts.filter((t) => !got.includes(t));
    // texts must survive unchanged: point out altered copies (the token is ASCII)
    const altered = client.events
      .filter((a) => typeof a[0] === 'string' && a[0].includes(token) && !texts.includes(a[0]))
      .map((a) => a[0]);
    const hint = altered.length ? `; received ALTERED text(s): ${JSON.stringify(altered)}` : '';
    const why = err instanceof CheckFailed ? err.detail : String(err);
    throw new CheckFailed(`${client.name} receive`, `${why}; missing: ${JSON.stringify(missing)}${hint}`);
  });
}

// returns Map text -> id, after checking shape and ordering
function verifyReceived(client, texts) {
  const name = client.name;
  const idByText = new Map();
  const order = [];
  const extras = [];
  for (const args of ownEvents(client, texts)) {
    const [text, id, ...extra] = args;
    check(
      typeof id === 'number' && Number.isInteger(id) && id > 0,
      `${name} event shape`,
      `expected ('chat message', text, positiveIntegerId), got args ${JSON.stringify(args)}`,
    );
    if (extra.length > 0) extras.push(extra);
    if (idByText.has(text)) {
      // a replayed copy of the same row is harmless; a second row is not
      check(
        idByText.get(text) === id,
        `${name} duplicate`,
        `text ${JSON.stringify(text)} delivered twice with different ids ${idByText.get(text)} and ${id}`,
      );
      log(`${name}: note: message #${id} delivered twice (same id, ignored)`);
      continue;
    }
    idByText.set(text, id);
    order.push(id);
  }
  if (extras.length > 0) {
    log(`${name}: note: ${extras.length} event(s) carried extra argument(s) after the id, e.g. ${JSON.stringify(extras[0])} (tolerated)`);
  }
  for (let i = 1; i < order.length; i++) {
    check(
      order[i] > order[i - 1],
      `${name} id order`,
      `ids not strictly increasing in receive order: ${JSON.stringify(order)}`,
    );
  }
  return idByText;
}

// ---------------------------------------------------------------- test
async function main() {
  log(`chat_roundtrip against ${baseUrl}, mode=${mode}`);
  const token = randomBytes(6).toString('hex');
  const texts = [
    `roundtrip ${mode} ${token} 1/3 plain text`,
    `roundtrip ${mode} ${token} 2/3 unicode: héllo wörld — ñ 日本語 Ελληνικά 😀🔥 ∑≠∞`,
    `roundtrip ${mode} ${token} 3/3 markup: <b>"quotes"</b> & 'apos' \\backslash\nnew line\ttab`,
  ];

  step = 'connect';
  const a = makeClient('A');
  const b = makeClient('B');
  await Promise.all([waitConnected(a), waitConnected(b)]);
  for (const c of [a, b]) {
    check(
      typeof c.socket.id === 'string' && c.socket.id.length > 0,
      `${c.name} socket id`,
      `expected a non-empty socket.id, got ${JSON.stringify(c.socket.id)}`,
    );
    log(`${c.name}: connected, sid=${c.socket.id}, transport=${c.socket.io.engine.transport.name}`);
  }

  step = 'transport';
  if (mode === 'default') {
    await Promise.all([waitUpgrade(a), waitUpgrade(b)]);
    for (const c of [a, b]) {
      const t = c.socket.io.engine.transport.name;
      check(t === 'websocket', `${c.name} upgrade`, `transport after upgrade is ${t}, expected websocket`);
      log(`${c.name}: upgraded to websocket`);
    }
  } else {
    for (const c of [a, b]) {
      const t = c.socket.io.engine.transport.name;
      check(t === mode, `${c.name} transport`, `transport is ${t}, expected ${mode}`);
    }
  }

  step = 'send';
  for (let i = 0; i < texts.length; i++) {
    const clientOffset = `${a.socket.id}-${token}-${i}`;
    let ack;
    try {
      ack = await a.socket.timeout(STEP_TIMEOUT_MS).emitWithAck('chat message', texts[i], clientOffset);
    } catch (err) {
      throw new CheckFailed(`ack of message ${i + 1}`, `no acknowledgement: ${describeError(err)}`);
    }
    check(
      ack === null || ack === undefined,
      `ack of message ${i + 1}`,
      `server acknowledged with an error: ${JSON.stringify(ack)}`,
    );
    log(`A: message ${i + 1}/${texts.length} acknowledged`);
  }

  step = 'receive';
  await Promise.all([waitForAll(a, texts, token), waitForAll(b, texts, token)]);
  await sleep(200); // catch late duplicates

  step = 'verify';
  const idsA = verifyReceived(a, texts);
  const idsB = verifyReceived(b, texts);
  for (const t of texts) {
    check(
      idsA.get(t) === idsB.get(t),
      'same id for A and B',
      `text ${JSON.stringify(t)}: A saw id ${idsA.get(t)}, B saw id ${idsB.get(t)}`,
    );
  }
  const ids = texts.map((t) => idsA.get(t));
  for (let i = 1; i < ids.length; i++) {
    check(ids[i] > ids[i - 1], 'ids follow send order', `ids in send order: ${JSON.stringify(ids)}`);
  }
  step = 'transport after exchange';
  for (const c of [a, b]) {
    const t = c.socket.io.engine.transport.name;
    const want = mode === 'polling' ? 'polling' : 'websocket';
    check(t === want, `${c.name} transport`, `transport is ${t} after the exchange, expected ${want}`);
    if (mode === 'polling') {
      check(c.upgrades.length === 0, `${c.name} no upgrade`, `polling-only client upgraded to ${c.upgrades}`);
    }
    check(c.socket.connected, `${c.name} still connected`, `disconnected: ${c.disconnectReason}`);
  }

  log(`ids: ${JSON.stringify(ids)} (same on A and B)`);
  return ids;
}

main().then(
  (ids) => finish(0, `chat_roundtrip mode=${mode}: 3 messages round-tripped, ids ${ids.join(', ')}`),
  (err) => {
    const msg = err instanceof CheckFailed ? err.message : `unexpected error: ${err?.stack || err}`;
    finish(1, `chat_roundtrip mode=${mode} at step "${step}": ${msg}`);
  },
);
