#!/usr/bin/env node
// End-to-end check of the `chat message` round trip with the official
// Socket.IO client (socket.io-client 4.8.1).
//
// usage: node chat_roundtrip.mjs BASE_URL [default|websocket|polling]
//
// Two clients A and B connect; A sends three messages with an acknowledgement;
// both must receive each one as ('chat message', text, id) with the same
// positive integer id, ids strictly increasing. Exits 0 on success, 1 on failure.

import {
  CheckFailed, check, log, makeClient, runMain, sendAcked, setStep, sleep, startRun, token, usageError,
  waitConnected, waitForTexts, waitUpgrade,
} from './e2e_common.mjs';

const MODES = ['default', 'websocket', 'polling'];
const USAGE = `node chat_roundtrip.mjs BASE_URL [${MODES.join('|')}]`;
const { baseUrl, args } = startRun('chat_roundtrip.mjs', { usage: USAGE });
const [mode = 'default'] = args;
if (!MODES.includes(mode)) usageError(`mode must be one of ${MODES.join(', ')} (${USAGE})`);

// A client on this run's transports that also records the transports it upgraded to.
function roundtripClient(name) {
  const opts = { tutorial: false, auth: { serverOffset: 0 } };
  if (mode === 'websocket') opts.transports = ['websocket'];
  if (mode === 'polling') opts.transports = ['polling'];
  const client = makeClient(baseUrl, name, opts);
  client.upgrades = [];
  client.socket.io.engine?.on('upgrade', (transport) => client.upgrades.push(transport.name));
  return client;
}

// Waits for every text; on a timeout, points out altered copies (the token is ASCII),
// since texts must survive unchanged.
function waitForAll(client, texts, tok) {
  return waitForTexts(client, texts).catch((err) => {
    const altered = client.events
      .filter((e) => typeof e.text === 'string' && e.text.includes(tok) && !texts.includes(e.text))
      .map((e) => e.text);
    if (altered.length === 0 || !(err instanceof CheckFailed)) throw err;
    throw new CheckFailed(`${client.name} receive`, `${err.detail}; received ALTERED text(s): ${JSON.stringify(altered)}`);
  });
}

// Returns Map text -> id, after checking shape and ordering. The events of this run only
// (the database may hold older messages, which may be replayed).
function verifyReceived(client, texts) {
  const name = client.name;
  const idByText = new Map();
  const order = [];
  const extras = [];
  for (const { args: eventArgs } of client.events.filter((e) => texts.includes(e.text))) {
    const [text, id, ...extra] = eventArgs;
    check(
      typeof id === 'number' && Number.isInteger(id) && id > 0,
      `${name} event shape`,
      `expected ('chat message', text, positiveIntegerId), got args ${JSON.stringify(eventArgs)}`,
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

async function main() {
  log(`chat_roundtrip against ${baseUrl}, mode=${mode}`);
  const tok = token();
  const texts = [
    `roundtrip ${mode} ${tok} 1/3 plain text`,
    `roundtrip ${mode} ${tok} 2/3 unicode: héllo wörld — ñ 日本語 Ελληνικά 😀🔥 ∑≠∞`,
    `roundtrip ${mode} ${tok} 3/3 markup: <b>"quotes"</b> & 'apos' \\backslash\nnew line\ttab`,
  ];

  setStep('connect');
  const a = roundtripClient('A');
  const b = roundtripClient('B');
  await Promise.all([waitConnected(a), waitConnected(b)]);
  for (const c of [a, b]) {
    check(
      typeof c.socket.id === 'string' && c.socket.id.length > 0,
      `${c.name} socket id`,
      `expected a non-empty socket.id, got ${JSON.stringify(c.socket.id)}`,
    );
  }

  setStep('transport');
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

  setStep('send');
  for (let i = 0; i < texts.length; i++) {
    await sendAcked(a, texts[i], `${a.socket.id}-${tok}-${i}`, `ack of message ${i + 1}`);
    log(`A: message ${i + 1}/${texts.length} acknowledged`);
  }

  setStep('receive');
  await Promise.all([waitForAll(a, texts, tok), waitForAll(b, texts, tok)]);
  await sleep(200); // catch late duplicates

  setStep('verify');
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

  setStep('transport after exchange');
  for (const c of [a, b]) {
    const t = c.socket.io.engine.transport.name;
    const want = mode === 'polling' ? 'polling' : 'websocket';
    check(t === want, `${c.name} transport`, `transport is ${t} after the exchange, expected ${want}`);
    if (mode === 'polling') {
      check(c.upgrades.length === 0, `${c.name} no upgrade`, `polling-only client upgraded to ${c.upgrades}`);
    }
    check(c.socket.connected, `${c.name} still connected`, `disconnected: ${c.disconnects.at(-1)}`);
  }

  log(`ids: ${JSON.stringify(ids)} (same on A and B)`);
  return ids;
}

runMain(main, (ids) => `mode=${mode}: 3 messages round-tripped, ids ${ids.join(', ')}`);
