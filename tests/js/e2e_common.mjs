// Shared helpers for the emberchat end-to-end client scripts (chat_roundtrip.mjs,
// replay.mjs, recovery.mjs, duplicates.mjs, backlog.mjs, burst.mjs, collect.mjs; the
// browser_*.mjs scripts use the run control, logging, checks and Chromium settings).
// tests/py/e2e_common.py is the same for the Python scripts.
//
// Every script: takes the server URL as argv[2], logs a short trace, exits 0 on
// success or 1 with a message naming the failed check, has an overall timeout
// (env E2E_TIMEOUT_MS overrides) and closes its clients on the way out.

import { randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';

export const STEP_TIMEOUT_MS = Number(process.env.E2E_STEP_TIMEOUT_MS) || 5_000;

// Debian's Chromium, headless as root, kept off the network this machine does not have.
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const started = Date.now();
const clients = [];
const waiters = new Set();
let overallTimer = null;
let finishing = false;
let scriptName = 'e2e';
let logToStderr = false;

export const state = { step: 'start' };

export function setStep(step) {
  state.step = step;
}

export function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(2).padStart(6);
  (logToStderr ? console.error : console.log)(`[${t}s]`, ...args);
}

export function elapsedMs() {
  return Date.now() - started;
}

export class CheckFailed extends Error {
  constructor(check, detail) {
    super(`${check}: ${detail}`);
    this.check = check;
    this.detail = detail;
  }
}

export function check(cond, name, detail) {
  if (!cond) throw new CheckFailed(name, typeof detail === 'function' ? detail() : detail);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function token() {
  return randomBytes(6).toString('hex');
}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(what, `timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function describeError(err) {
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

export function short(text, max = 60) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

// ---------------------------------------------------------------- run control

// Parses argv (argv[2] = server URL), installs the overall timeout and the
// unhandled-rejection trap. Returns { baseUrl, args } with args = argv[3..].
export function startRun(name, { usage, defaultTimeoutMs = 20_000, stderrLog = false, onTimeout } = {}) {
  scriptName = name;
  logToStderr = stderrLog;
  const [baseUrl, ...args] = process.argv.slice(2);
  if (!baseUrl) {
    console.error(`usage: ${usage || `node ${name} URL`}`);
    process.exit(1);
  }
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch (e) {
    console.error(`FAIL arguments: bad URL ${JSON.stringify(baseUrl)} (${e.message})`);
    process.exit(1);
  }
  const overallMs = Number(process.env.E2E_TIMEOUT_MS) || defaultTimeoutMs;
  overallTimer = setTimeout(() => {
    if (onTimeout) onTimeout(overallMs);
    else finish(1, `${name}: overall timeout: no result after ${overallMs} ms (stuck at step: ${state.step})`);
  }, overallMs);
  process.on('unhandledRejection', (err) => {
    finish(1, `${name}: unexpected error at step "${state.step}": ${err?.stack || err}`);
  });
  return { baseUrl, args, overallMs };
}

export function usageError(message) {
  console.error(`FAIL arguments: ${message}`);
  process.exit(1);
}

export function closeAll() {
  for (const c of clients) {
    try {
      c.socket.io.reconnection(false);
      c.socket.disconnect();
    } catch {
      // ignore: we are tearing down
    }
  }
}

const cleanups = [];

// Registers work to do before exiting (closing a browser, say); each gets at most
// 5 s, so nothing stuck can keep the script alive.
export function onFinish(cleanup) {
  cleanups.push(cleanup);
}

export async function finish(code, message) {
  if (finishing) return;
  finishing = true;
  clearTimeout(overallTimer);
  if (code === 0) log(`PASS ${message}`);
  else console.error(`FAIL ${message}`);
  closeAll();
  for (const cleanup of cleanups) {
    await Promise.race([Promise.resolve().then(cleanup).catch(() => {}), sleep(5_000)]);
  }
  await sleep(100); // let close packets flush
  process.exit(code);
}

// Runs main(); on success prints PASS with successMessage(result), otherwise FAIL.
export function runMain(main, successMessage) {
  main().then(
    (result) => finish(0, `${scriptName}: ${successMessage(result)}`),
    (err) => {
      const msg = err instanceof CheckFailed ? err.message : `unexpected error: ${err?.stack || err}`;
      finish(1, `${scriptName} at step "${state.step}": ${msg}`);
    },
  );
}

// ---------------------------------------------------------------- waiting

function notify() {
  for (const w of waiters) w();
}

// Resolves once predicate() is true (re-evaluated on every client event).
// detail() explains the state on timeout.
export function waitUntil(predicate, ms, what, detail) {
  if (predicate()) return Promise.resolve();
  let waiter;
  const p = new Promise((resolve) => {
    waiter = () => {
      if (predicate()) {
        waiters.delete(waiter);
        resolve();
      }
    };
    waiters.add(waiter);
  });
  return withTimeout(p, ms, what).catch((err) => {
    waiters.delete(waiter);
    if (err instanceof CheckFailed && detail) throw new CheckFailed(what, `${err.detail}; ${detail()}`);
    throw err;
  });
}

// ---------------------------------------------------------------- clients

// Creates a client that records every ('chat message', text, id, offset) it
// receives. tutorial: on each message set socket.auth.serverOffset = id (the
// Socket.IO tutorial's client). Other options go to io().
// record: keep events in client.events (off for bulk receivers); onMessage(text, id, offset, args)
// is called for every message.
export function makeClient(
  baseUrl,
  name,
  { tutorial = true, auth = { serverOffset: 0 }, quiet = false, record = true, onMessage = null, ...opts } = {},
) {
  const socket = io(baseUrl, {
    auth: { ...auth },
    forceNew: true, // separate Engine.IO connection per client
    reconnection: false, // a failure must surface, not be retried away
    timeout: STEP_TIMEOUT_MS,
    ...opts,
  });
  const client = {
    name,
    socket,
    events: [], // { text, id, offset, args, epoch }
    connects: [], // { id, recovered, at }
    disconnects: [], // reasons
    connectErrors: [],
    epoch: 0, // number of 'connect' events so far
  };
  socket.on('chat message', (...args) => {
    const [text, id, offset] = args;
    if (record) client.events.push({ text, id, offset, args, epoch: client.epoch });
    if (tutorial) socket.auth.serverOffset = id;
    if (onMessage) onMessage(text, id, offset, args);
    if (record) notify();
  });
  socket.on('connect', () => {
    client.epoch += 1;
    client.connects.push({ id: socket.id, recovered: socket.recovered, at: Date.now() });
    if (!quiet) {
      log(`${name}: connected id=${socket.id} recovered=${socket.recovered} transport=${socket.io.engine?.transport?.name}`);
    }
    notify();
  });
  socket.on('disconnect', (reason) => {
    client.disconnects.push(reason);
    if (!quiet && !finishing) log(`${name}: disconnected (${reason})`);
    notify();
  });
  socket.on('connect_error', (err) => {
    client.connectErrors.push(describeError(err));
    if (!quiet) log(`${name}: connect_error: ${describeError(err)}`);
    notify();
  });
  clients.push(client);
  return client;
}

export function waitConnected(client, ms = STEP_TIMEOUT_MS) {
  if (client.socket.connected) return Promise.resolve();
  const n = client.connects.length;
  const errs = client.connectErrors.length;
  let failure = null;
  return waitUntil(
    () => {
      if (client.connects.length > n) return true;
      // without reconnection a connect_error is final
      if (client.connectErrors.length > errs && !client.socket.io.reconnection()) {
        failure = client.connectErrors.at(-1);
        return true;
      }
      return false;
    },
    ms,
    `${client.name} connect`,
    () => `connect errors: ${JSON.stringify(client.connectErrors.slice(errs))}`,
  ).then(() => {
    if (failure !== null) throw new CheckFailed(`${client.name} connect`, `connect_error: ${failure}`);
  });
}

// Waits for the next 'connect' event after this call.
export function waitNextConnect(client, ms, what = `${client.name} reconnect`) {
  const n = client.connects.length;
  return waitUntil(
    () => client.connects.length > n,
    ms,
    what,
    () => `connected=${client.socket.connected}; disconnect reasons ${JSON.stringify(client.disconnects)}; connect errors ${JSON.stringify(client.connectErrors)}`,
  );
}

export function waitDisconnected(client, ms = STEP_TIMEOUT_MS, what = `${client.name} disconnect`) {
  const n = client.disconnects.length;
  return waitUntil(() => client.disconnects.length > n, ms, what, () => `connected=${client.socket.connected}`);
}

export function waitUpgrade(client, ms = STEP_TIMEOUT_MS) {
  const engine = client.socket.io.engine;
  if (engine.transport.name === 'websocket') return Promise.resolve();
  return withTimeout(
    new Promise((resolve, reject) => {
      engine.once('upgrade', resolve);
      engine.once('upgradeError', (err) =>
        reject(new CheckFailed(`${client.name} upgrade`, `upgradeError: ${describeError(err)}`)),
      );
    }),
    ms,
    `${client.name} upgrade to websocket`,
  );
}

// Emits ('chat message', text, clientOffset) with an acknowledgement and checks
// that the server acknowledged without an error. Returns the ack arguments.
export function sendAcked(client, text, clientOffset, what = `${client.name} ack`) {
  return new Promise((resolve, reject) => {
    client.socket.timeout(STEP_TIMEOUT_MS).emit('chat message', text, clientOffset, (err, ...ackArgs) => {
      if (err) {
        reject(new CheckFailed(what, `no acknowledgement for ${JSON.stringify(short(text))}: ${describeError(err)}`));
        return;
      }
      if (ackArgs.some((a) => a !== null && a !== undefined)) {
        reject(new CheckFailed(what, `server acknowledged ${JSON.stringify(short(text))} with ${JSON.stringify(ackArgs)}`));
        return;
      }
      if (ackArgs.length !== 0) log(`${client.name}: note: ack arguments ${JSON.stringify(ackArgs)} (expected [])`);
      resolve(ackArgs);
    });
  });
}

// Sends texts one after the other, each awaited; returns nothing.
export async function sendAllAcked(client, texts, offsetPrefix) {
  for (let i = 0; i < texts.length; i++) {
    await sendAcked(client, texts[i], `${offsetPrefix}-${i}`, `${client.name} ack of message ${i + 1}/${texts.length}`);
  }
  log(`${client.name}: ${texts.length} message(s) acknowledged`);
}

// Checks the argument shape of every recorded event: (text, positive int id, "<id>").
// The "<id>" offset may be absent only when the server does not offer recovery
// (no pid in its CONNECT reply), as with --recovery-window 0.
export function checkShapes(client, events = client.events) {
  const recovery = typeof client.socket._pid === 'string';
  for (const e of events) {
    if (!recovery && e.args.length === 2) continue;
    check(
      typeof e.text === 'string' && Number.isInteger(e.id) && e.id > 0,
      `${client.name} event shape`,
      () => `expected ('chat message', text, positiveIntegerId, "<id>"), got args ${JSON.stringify(e.args)}`,
    );
    check(
      e.offset === String(e.id) && e.args.length === 3,
      `${client.name} event offset argument`,
      () => `expected 4th argument "${e.id}" (and nothing after it)${recovery ? '' : ' or none'}, got args ${JSON.stringify(e.args)}`,
    );
  }
}

export function waitForTexts(client, texts, ms = STEP_TIMEOUT_MS, fromIndex = 0) {
  const want = new Set(texts);
  const have = () => {
    const got = new Set();
    for (let i = fromIndex; i < client.events.length; i++) {
      if (want.has(client.events[i].text)) got.add(client.events[i].text);
    }
    return got;
  };
  return waitUntil(
    () => have().size === want.size,
    ms,
    `${client.name} receives ${texts.length} message(s)`,
    () => `missing ${JSON.stringify(texts.filter((t) => !have().has(t)).map((t) => short(t)))}`,
  );
}

// Map text -> id as seen by a client (first occurrence), for the given texts.
export function idsOf(client, texts) {
  const m = new Map();
  for (const e of client.events) if (texts.includes(e.text) && !m.has(e.text)) m.set(e.text, e.id);
  return texts.map((t) => m.get(t));
}

// Verifies that the events `events` (received after a reconnection) are
// exactly the missed messages: each expected text once, in send order, with
// the ids `expectedIds`; nothing with an id <= lastIdBefore; no id twice; ids
// increasing. Messages from other, concurrent clients (new ids, not carrying
// this run's token) are tolerated and reported.
export function verifyExactlyMissed(name, events, { expectedTexts, expectedIds, lastIdBefore, runToken }) {
  const older = events.filter((e) => e.id <= lastIdBefore);
  check(
    older.length === 0,
    `${name} nothing older`,
    () => `received ${older.length} message(s) with id <= ${lastIdBefore} (already seen before), e.g. ${JSON.stringify(older.slice(0, 5).map((e) => [e.id, short(e.text, 40)]))}`,
  );
  const seenIds = new Set();
  for (const e of events) {
    check(
      !seenIds.has(e.id),
      `${name} no duplicates`,
      () => `id ${e.id} (${JSON.stringify(short(e.text, 40))}) received twice; ids received: ${JSON.stringify(events.map((x) => x.id))}`,
    );
    seenIds.add(e.id);
  }
  for (let i = 1; i < events.length; i++) {
    check(
      events[i].id > events[i - 1].id,
      `${name} id order`,
      () => `ids not increasing in receive order: ${JSON.stringify(events.map((x) => x.id))}`,
    );
  }
  const own = events.filter((e) => expectedTexts.includes(e.text));
  check(
    own.length === expectedTexts.length,
    `${name} exactly the missed messages`,
    () => `expected ${expectedTexts.length}, received ${own.length}: ${JSON.stringify(own.map((e) => [e.id, short(e.text, 40)]))}; missing ${JSON.stringify(expectedTexts.filter((t) => !own.some((e) => e.text === t)).map((t) => short(t, 40)))}`,
  );
  check(
    own.every((e, i) => e.text === expectedTexts[i]),
    `${name} missed messages in order`,
    () => `received ${JSON.stringify(own.map((e) => short(e.text, 40)))}, expected ${JSON.stringify(expectedTexts.map((t) => short(t, 40)))}`,
  );
  if (expectedIds) {
    check(
      own.every((e, i) => e.id === expectedIds[i]),
      `${name} missed messages ids`,
      () => `received ids ${JSON.stringify(own.map((e) => e.id))}, the sender saw ${JSON.stringify(expectedIds)}`,
    );
  }
  const foreign = events.filter((e) => !expectedTexts.includes(e.text));
  if (runToken) {
    const ours = foreign.filter((e) => typeof e.text === 'string' && e.text.includes(runToken));
    check(
      ours.length === 0,
      `${name} nothing unexpected`,
      () => `received unexpected message(s) of this run: ${JSON.stringify(ours.map((e) => [e.id, short(e.text, 40)]))}`,
    );
  }
  if (foreign.length > 0) {
    log(`${name}: note: ${foreign.length} message(s) from other clients also arrived (new ids, tolerated)`);
  }
}
