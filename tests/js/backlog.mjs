#!/usr/bin/env node
// Large history replay with live traffic in the middle, with socket.io-client 4.8.1.
//
// usage: node backlog.mjs URL TOTAL [default|websocket|polling]
//
// The database was preloaded with TOTAL rows (ids 1..TOTAL, contents
// "backlog-<id>") and holds nothing else. Client R connects with
// {serverOffset: 0}; once it has received ~10% of TOTAL, client S (connected
// beforehand with {serverOffset: TOTAL}, so it gets no history) sends 20
// acknowledged live messages. R must receive exactly TOTAL+20 messages: ids
// 1..TOTAL+20 once each in increasing order, the backlog contents, then the 20
// live texts in send order. Prints the throughput. The optional transport
// applies to R (default: polling, then upgrade to websocket mid-replay).
// env BACKLOG_TRACE=1 logs R's progress at each of S's acks.
// Exits 0 on success, 1 on failure.

import {
  STEP_TIMEOUT_MS, check, log, makeClient, runMain, sendAcked, setStep, short, sleep, startRun, token,
  usageError, waitConnected, waitForTexts, withTimeout,
} from './e2e_common.mjs';

const TRANSPORTS = ['default', 'websocket', 'polling'];
const USAGE = `node backlog.mjs URL TOTAL [${TRANSPORTS.join('|')}]`;
const { baseUrl, args } = startRun('backlog.mjs', { usage: USAGE, defaultTimeoutMs: 60_000 });
const TOTAL = Number(args[0]);
if (!Number.isInteger(TOTAL) || TOTAL < 0) usageError(`TOTAL must be a non-negative integer (${USAGE})`);
const transport = args[1] || 'default';
if (!TRANSPORTS.includes(transport)) usageError(`bad transport (${USAGE})`);

const LIVE = 20;
const EXPECTED = TOTAL + LIVE;
const TRIGGER_AT = Math.max(1, Math.floor(TOTAL / 10));
const STALL_MS = Math.max(STEP_TIMEOUT_MS, 10_000); // no message for this long = stuck
const DUPLICATE_GRACE_MS = 500;

async function main() {
  const tok = token();
  const liveTexts = Array.from({ length: LIVE }, (_, i) => `backlog live ${tok} ${i + 1}/${LIVE} ${token()}`);
  log(`backlog against ${baseUrl}: TOTAL=${TOTAL}, transport=${transport}, live messages after ${TRIGGER_AT}`);

  setStep('connect S');
  const s = makeClient(baseUrl, 'S', { auth: { serverOffset: TOTAL } });
  await waitConnected(s);

  // R: checked incrementally, O(1) per message, nothing logged per message
  const r = {
    count: 0,
    nextId: 1,
    failure: null,
    lastAt: Date.now(),
    firstAt: null,
    doneAt: null,
    countAtFirstLive: null,
    countAtFirstAck: null,
  };
  let triggerLive;
  const triggered = new Promise((resolve) => {
    triggerLive = resolve;
  });
  let completed;
  const complete = new Promise((resolve) => {
    completed = resolve;
  });

  const fail = (detail) => {
    if (r.failure === null) {
      r.failure = `at message #${r.count}: ${detail}`;
      completed();
    }
  };
  const onMessage = (text, id, offset, argv) => {
    r.count += 1;
    r.lastAt = Date.now();
    if (r.firstAt === null) r.firstAt = r.lastAt;
    if (r.count === TRIGGER_AT) triggerLive();
    if (r.failure !== null) return;
    if (r.count > EXPECTED) {
      fail(`extra message beyond ${EXPECTED}: id ${id} ${JSON.stringify(short(text, 50))}`);
      return;
    }
    if (id !== r.nextId) {
      const kind = typeof id !== 'number' ? 'bad id' : id < r.nextId ? 'duplicate or out of order' : 'gap';
      fail(`${kind}: expected id ${r.nextId}, got ${JSON.stringify(id)} (${JSON.stringify(short(text, 50))})`);
      return;
    }
    const offsetOk = argv.length === 3 ? offset === String(id) : argv.length === 2 && typeof rc.socket._pid !== 'string';
    if (!offsetOk) {
      fail(`id ${id}: expected arguments (text, ${id}, "${id}"), got ${JSON.stringify(argv.slice(1))}`);
      return;
    }
    if (id <= TOTAL) {
      if (text !== `backlog-${id}`) {
        fail(`id ${id}: content ${JSON.stringify(short(text, 50))}, expected "backlog-${id}"`);
        return;
      }
    } else {
      if (r.countAtFirstLive === null) r.countAtFirstLive = r.count;
      const want = liveTexts[id - TOTAL - 1];
      if (text !== want) {
        fail(`id ${id}: content ${JSON.stringify(short(text, 50))}, expected live message ${JSON.stringify(short(want, 50))}`);
        return;
      }
    }
    r.nextId += 1;
    if (r.count === EXPECTED) {
      r.doneAt = r.lastAt;
      completed();
    }
  };

  setStep('connect R');
  const rOpts = transport === 'default' ? {} : { transports: [transport] };
  const connectAt = Date.now();
  const rc = makeClient(baseUrl, 'R', { auth: { serverOffset: 0 }, record: false, onMessage, ...rOpts });
  await waitConnected(rc);
  if (TOTAL === 0) triggerLive();

  // stall watchdog: progress must not stop for STALL_MS
  const stalled = new Promise((_, reject) => {
    const t = setInterval(() => {
      if (r.failure !== null || r.doneAt !== null) {
        clearInterval(t);
      } else if (Date.now() - r.lastAt > STALL_MS) {
        clearInterval(t);
        reject(new Error(`no message for ${STALL_MS} ms after ${r.count} of ${EXPECTED} (next expected id ${r.nextId})`));
      }
    }, 250);
  });

  setStep('S sends live messages while R replays');
  const sending = (async () => {
    await withTimeout(triggered, STALL_MS, `R receives ${TRIGGER_AT} messages`);
    const atStart = r.count;
    for (let i = 0; i < LIVE; i++) {
      await sendAcked(s, liveTexts[i], `${s.socket.id}-${tok}-${i}`, `S ack of live message ${i + 1}/${LIVE}`);
      if (i === 0) r.countAtFirstAck = r.count;
      if (process.env.BACKLOG_TRACE) log(`S: ack ${i + 1} at R count ${r.count}`);
    }
    log(`S: ${LIVE} live messages acknowledged (R had ${atStart} when S started, ${r.countAtFirstAck} at the first ack, ${r.count} at the last)`);
  })();

  setStep('R receives everything');
  try {
    await Promise.race([Promise.all([complete, sending]), stalled]);
  } catch (e) {
    check(false, 'R receives everything', `${e.message}`);
  }
  check(r.failure === null, 'R sequence', () => r.failure);
  const elapsed = (r.doneAt - connectAt) / 1000;
  const rate = Math.round(EXPECTED / Math.max(elapsed, 0.001));
  log(`R: ${EXPECTED} messages in ${elapsed.toFixed(2)} s (${rate} messages/s, first after ${r.firstAt - connectAt} ms), transport now ${rc.socket.io.engine.transport.name}`);

  setStep('no late extras');
  await sleep(DUPLICATE_GRACE_MS);
  check(r.failure === null, 'R sequence', () => r.failure);
  check(r.count === EXPECTED, 'R message count', () => `received ${r.count}, expected exactly ${EXPECTED}`);

  setStep('S sees its messages');
  await waitForTexts(s, liveTexts);
  const sIds = liveTexts.map((t) => s.events.find((e) => e.text === t).id);
  check(
    sIds.every((id, i) => id === TOTAL + 1 + i),
    'live ids',
    () => `S saw its live messages as ids ${JSON.stringify(sIds)}, expected ${TOTAL + 1}..${EXPECTED}`,
  );
  check(s.events.length === LIVE, 'S receives no history', () => `S got ${s.events.length} messages, expected ${LIVE}`);
  if (r.countAtFirstAck !== null && r.countAtFirstAck >= TOTAL) {
    log('note: R had the whole backlog before S\'s first ack arrived: live traffic did not overlap the replay');
  }
  check(rc.socket.connected && s.socket.connected, 'still connected', 'a client dropped');
  return { elapsed, rate };
}

runMain(main, ({ elapsed, rate }) => `R received ids 1..${EXPECTED} exactly once, in order, in ${elapsed.toFixed(2)} s (${rate} messages/s)`);
