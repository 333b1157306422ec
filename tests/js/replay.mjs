#!/usr/bin/env node
// Exact replay after a full (manual) disconnect, with socket.io-client 4.8.1.
//
// usage: node replay.mjs URL
//
// Client A (auth {serverOffset: 0}, tutorial style: every 'chat message' sets
// socket.auth.serverOffset = id) sends 3 acknowledged messages and receives
// them; A calls socket.disconnect(); client B sends 4 more acknowledged
// messages; A calls socket.connect(). A must not be recovered (a manual
// disconnect ends the session) and must receive exactly the 4 missed messages
// through the serverOffset replay: in order, once each, with the ids B saw,
// and nothing it had already seen. Exits 0 on success, 1 on failure.

import {
  STEP_TIMEOUT_MS, check, checkShapes, idsOf, log, makeClient, runMain, sendAllAcked, setStep, sleep,
  startRun, token, verifyExactlyMissed, waitConnected, waitDisconnected, waitForTexts,
} from './e2e_common.mjs';

const { baseUrl } = startRun('replay.mjs', { usage: 'node replay.mjs URL' });
const DUPLICATE_GRACE_MS = 500;

async function main() {
  const tok = token();
  log(`replay against ${baseUrl}, token ${tok}`);
  const textsA = [1, 2, 3].map((i) => `replay ${tok} A${i}/3 ${token()}`);
  const textsB = [1, 2, 3, 4].map((i) => `replay ${tok} B${i}/4 ${token()} ünïcødé ✓`);

  setStep('connect');
  const a = makeClient(baseUrl, 'A', { auth: { serverOffset: 0 } });
  const b = makeClient(baseUrl, 'B', { auth: { serverOffset: 0 } });
  await Promise.all([waitConnected(a), waitConnected(b)]);
  const oldId = a.socket.id;

  setStep('A sends 3 messages');
  await sendAllAcked(a, textsA, `${oldId}-${tok}-a`);
  await Promise.all([waitForTexts(a, textsA), waitForTexts(b, textsA)]);
  const idsA = idsOf(a, textsA);
  check(
    idsA.every((id, i) => i === 0 || id > idsA[i - 1]),
    'ids follow send order',
    () => `A's messages got ids ${JSON.stringify(idsA)}`,
  );
  await sleep(100); // let any straggling history arrive before we take the offset
  const lastIdBefore = a.socket.auth.serverOffset;
  check(
    Number.isInteger(lastIdBefore) && lastIdBefore >= idsA[2],
    'A tracks its offset',
    () => `socket.auth.serverOffset is ${JSON.stringify(lastIdBefore)}, expected >= ${idsA[2]}`,
  );
  log(`A: received its messages as ids ${JSON.stringify(idsA)}, offset now ${lastIdBefore}`);

  setStep('A disconnects manually');
  const disc = waitDisconnected(a);
  a.socket.disconnect();
  await disc;
  check(a.disconnects.at(-1) === 'io client disconnect', 'A disconnect reason', () => `got ${a.disconnects.at(-1)}`);
  const mark = a.events.length;

  setStep('B sends 4 messages while A is away');
  await sendAllAcked(b, textsB, `${b.socket.id}-${tok}-b`);
  await waitForTexts(b, textsB);
  const idsB = idsOf(b, textsB);
  log(`B: its messages got ids ${JSON.stringify(idsB)}`);
  check(a.events.length === mark, 'A receives nothing while disconnected', () => `got ${a.events.length - mark} event(s)`);

  setStep('A reconnects');
  a.socket.connect();
  await waitConnected(a);
  check(!a.socket.recovered, 'A not recovered', () => `socket.recovered is ${a.socket.recovered} after a manual disconnect`);
  check(a.socket.id !== oldId, 'A gets a new id', () => `socket.id ${a.socket.id} is the id of the closed session`);

  setStep('A receives the missed messages');
  await waitForTexts(a, textsB, STEP_TIMEOUT_MS, mark);
  await sleep(DUPLICATE_GRACE_MS); // catch duplicates and late history
  const after = a.events.slice(mark);
  checkShapes(a);
  checkShapes(b);
  verifyExactlyMissed('A', after, { expectedTexts: textsB, expectedIds: idsB, lastIdBefore, runToken: tok });
  check(
    a.socket.auth.serverOffset === Math.max(...after.map((e) => e.id)),
    'A offset after replay',
    () => `socket.auth.serverOffset is ${a.socket.auth.serverOffset}`,
  );
  check(b.socket.connected && a.socket.connected, 'still connected', 'a client dropped');
  return { idsB, received: after.length };
}

runMain(main, (r) => `A got exactly the ${r.idsB.length} missed messages (ids ${r.idsB.join(', ')}) after reconnecting`);
