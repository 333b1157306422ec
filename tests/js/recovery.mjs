#!/usr/bin/env node
// Connection state recovery checks, with socket.io-client 4.8.1.
//
// usage: node recovery.mjs URL MODE [default|websocket|polling]
//
// MODE
//   dropped  A's transport is dropped (no manual disconnect); B sends 3
//            acknowledged messages while A is away; A reconnects by itself and
//            must be recovered (socket.recovered, same socket.id) and receive
//            exactly the 3 missed messages, once, in order, nothing older.
//   manual   A calls socket.disconnect() then socket.connect(): not recovered,
//            new id, the 3 missed messages arrive once via the serverOffset replay.
//   window   for a server started with --recovery-window 1000: A's transport is
//            dropped and A reconnects only after ~2 s: not recovered (the
//            session expired), the 3 missed messages arrive once via the
//            serverOffset replay.
//   stale    A (websocket) is connected; an independent client C presents A's
//            session ({pid, offset} taken from A) while A is still connected:
//            the server must close A's session and give C A's socket id; a new
//            message then reaches C once.
// The optional transport (default: "default" = polling then upgrade, except
// "websocket" for stale) applies to A. Exits 0 on success, 1 on failure.

import {
  STEP_TIMEOUT_MS, check, checkShapes, idsOf, log, makeClient, runMain, sendAcked, sendAllAcked, setStep,
  sleep, startRun, token, usageError, verifyExactlyMissed, waitConnected, waitDisconnected, waitForTexts,
  waitNextConnect, waitUpgrade,
} from './e2e_common.mjs';

const MODES = ['dropped', 'manual', 'window', 'stale'];
const TRANSPORTS = ['default', 'websocket', 'polling'];
const USAGE = `node recovery.mjs URL ${MODES.join('|')} [${TRANSPORTS.join('|')}]`;
const { baseUrl, args } = startRun('recovery.mjs', { usage: USAGE });
const [mode, transportArg] = args;
if (!MODES.includes(mode)) usageError(`MODE must be one of ${MODES.join(', ')} (${USAGE})`);
if (transportArg !== undefined && !TRANSPORTS.includes(transportArg)) usageError(`bad transport (${USAGE})`);
const transport = transportArg || (mode === 'stale' ? 'websocket' : 'default');

const DUPLICATE_GRACE_MS = 500;
// dropped: A waits this long before reconnecting, so B's sends land while A is away
const DROPPED_RECONNECT_DELAY_MS = 500;
// window: A reconnects only after this long (the server's window should be 1000 ms)
const WINDOW_RECONNECT_DELAY_MS = 2_000;

function transportOpts() {
  if (transport === 'websocket') return { transports: ['websocket'] };
  if (transport === 'polling') return { transports: ['polling'] };
  return {};
}

function reconnectOpts() {
  const delay = mode === 'window' ? WINDOW_RECONNECT_DELAY_MS : DROPPED_RECONNECT_DELAY_MS;
  if (mode === 'dropped' || mode === 'window') {
    return { reconnection: true, reconnectionDelay: delay, reconnectionDelayMax: delay, randomizationFactor: 0 };
  }
  return { reconnection: false };
}

// A connects and receives a broadcast, so that the client holds a recovery offset.
async function setUp(tok) {
  setStep('connect');
  const a = makeClient(baseUrl, 'A', { auth: { serverOffset: 0 }, ...transportOpts(), ...reconnectOpts() });
  const b = makeClient(baseUrl, 'B', { auth: { serverOffset: 0 } });
  await Promise.all([waitConnected(a), waitConnected(b)]);
  if (transport === 'default') await waitUpgrade(a);

  setStep('first broadcast');
  const warm = `recovery ${mode} ${tok} warm-up ${token()}`;
  await sendAcked(b, warm, `${b.socket.id}-${tok}-warm`);
  await waitForTexts(a, [warm]);
  await sleep(100); // let any straggling history arrive before we take the offsets
  const lastIdBefore = a.socket.auth.serverOffset;
  const [warmId] = idsOf(a, [warm]);
  check(
    Number.isInteger(lastIdBefore) && lastIdBefore >= warmId,
    'A tracks its offset',
    () => `socket.auth.serverOffset is ${JSON.stringify(lastIdBefore)}, expected >= ${warmId}`,
  );
  const pid = a.socket._pid;
  const lastOffset = a.socket._lastOffset;
  if (mode !== 'manual') {
    check(
      typeof pid === 'string' && pid.length > 0,
      'server offers recovery',
      () => `CONNECT reply carried no pid (socket._pid=${JSON.stringify(pid)}): is recovery enabled on the server?`,
    );
    check(
      lastOffset === String(lastIdBefore),
      'A holds a recovery offset',
      () => `socket._lastOffset is ${JSON.stringify(lastOffset)}, expected "${lastIdBefore}"`,
    );
  }
  log(`A: id=${a.socket.id} pid=${pid} lastOffset=${lastOffset} serverOffset=${lastIdBefore} transport=${a.socket.io.engine.transport.name}`);
  return { a, b, oldId: a.socket.id, lastIdBefore, pid, lastOffset };
}

async function missedAfterAbsence(tok) {
  const { a, b, oldId, lastIdBefore } = await setUp(tok);
  const missed = [1, 2, 3].map((i) => `recovery ${mode} ${tok} missed ${i}/3 ${token()} ✓`);

  setStep(`A goes away (${mode})`);
  const disc = waitDisconnected(a);
  const connectsBefore = a.connects.length;
  const awayAt = Date.now();
  if (mode === 'manual') a.socket.disconnect();
  else a.socket.io.engine.close(); // drops the transport; the Manager will reconnect
  await disc;
  const reason = a.disconnects.at(-1);
  if (mode === 'manual') {
    check(reason === 'io client disconnect', 'A disconnect reason', () => `got ${JSON.stringify(reason)}`);
  } else {
    check(reason !== 'io client disconnect', 'A disconnect reason', () => `got ${JSON.stringify(reason)}: not a dropped transport`);
    check(a.socket.active, 'A will reconnect', 'socket is not active after the transport was dropped');
  }
  const mark = a.events.length;
  const reconnected = mode === 'manual' ? null : waitNextConnect(a, STEP_TIMEOUT_MS + WINDOW_RECONNECT_DELAY_MS);

  setStep('B sends 3 messages while A is away');
  await sendAllAcked(b, missed, `${b.socket.id}-${tok}-missed`);
  check(
    a.connects.length === connectsBefore,
    'B done before A is back',
    () => `A reconnected before B's 3 messages were acknowledged (${Date.now() - awayAt} ms after the drop): test timing, not a server fault`,
  );
  await waitForTexts(b, missed);
  const missedIds = idsOf(b, missed);
  log(`B: missed messages have ids ${JSON.stringify(missedIds)}`);

  setStep('A comes back');
  if (mode === 'manual') {
    a.socket.connect();
    await waitConnected(a);
  } else {
    await reconnected;
  }
  log(`A: back after ${Date.now() - awayAt} ms`);
  if (mode === 'dropped') {
    check(a.socket.recovered === true, 'A recovered', () => `socket.recovered is ${a.socket.recovered} after a dropped transport`);
    check(a.socket.id === oldId, 'A keeps its id', () => `socket.id is ${a.socket.id}, was ${oldId}`);
  } else {
    const why = mode === 'manual' ? 'after a manual disconnect' : 'after the recovery window expired';
    check(!a.socket.recovered, 'A not recovered', () => `socket.recovered is ${a.socket.recovered} ${why}`);
    check(a.socket.id !== oldId, 'A gets a new id', () => `socket.id ${a.socket.id} is the old session's id ${why}`);
  }

  setStep('A receives the missed messages');
  await waitForTexts(a, missed, STEP_TIMEOUT_MS, mark);
  await sleep(DUPLICATE_GRACE_MS); // catch duplicates and late history
  const after = a.events.slice(mark);
  checkShapes(a);
  checkShapes(b);
  verifyExactlyMissed('A', after, { expectedTexts: missed, expectedIds: missedIds, lastIdBefore, runToken: tok });
  check(a.connects.length === connectsBefore + 1, 'A connected once', () => `A connected ${a.connects.length - connectsBefore} times`);
  check(a.socket.connected && b.socket.connected, 'still connected', 'a client dropped');
  return `A ${mode === 'dropped' ? 'recovered' : 'replayed'} exactly the 3 missed messages (ids ${missedIds.join(', ')})`;
}

async function stale(tok) {
  const { a, b, oldId, lastIdBefore, pid, lastOffset } = await setUp(tok);

  setStep('C takes over A\'s session');
  const aGone = waitDisconnected(a, STEP_TIMEOUT_MS, 'A disconnected by the server');
  const c = makeClient(baseUrl, 'C', { auth: { pid, offset: lastOffset, serverOffset: lastIdBefore }, ...transportOpts() });
  await waitConnected(c);
  await aGone;
  log(`A: disconnect reason ${JSON.stringify(a.disconnects.at(-1))}`);
  check(c.socket.id === oldId, 'C gets A\'s old id', () => `C.id is ${c.socket.id}, A's id was ${oldId}`);
  check(!a.socket.connected, 'A disconnected', 'A still connected');

  setStep('B sends a message');
  const text = `recovery stale ${tok} after takeover ${token()}`;
  const aMark = a.events.length;
  await sendAcked(b, text, `${b.socket.id}-${tok}-after`);
  await waitForTexts(b, [text]);
  const [id] = idsOf(b, [text]);
  await waitForTexts(c, [text]);
  await sleep(DUPLICATE_GRACE_MS);
  checkShapes(b);
  checkShapes(c);
  verifyExactlyMissed('C', c.events, { expectedTexts: [text], expectedIds: [id], lastIdBefore, runToken: tok });
  check(a.events.length === aMark, 'A receives nothing after the takeover', () => `A got ${a.events.length - aMark} event(s)`);
  check(c.socket.connected && b.socket.connected, 'still connected', 'a client dropped');
  return `C took over A's session (id ${oldId}); A was disconnected; message #${id} reached C once`;
}

runMain(
  () => {
    const tok = token();
    log(`recovery mode=${mode} transport=${transport} against ${baseUrl}, token ${tok}`);
    return mode === 'stale' ? stale(tok) : missedAfterAbsence(tok);
  },
  (msg) => `mode=${mode}: ${msg}`,
);
