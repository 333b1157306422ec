#!/usr/bin/env node
// Server-side deduplication by clientOffset, with socket.io-client 4.8.1.
//
// usage: node duplicates.mjs URL
//
// 1. A sends the same text with the same clientOffset 3 times, each awaited:
//    every send is acknowledged without error; A and B see it broadcast once.
// 2. A sends a second text with a different clientOffset: broadcast once.
// 3. A sends the first text again under a new clientOffset: it is a new
//    message (deduplication is by clientOffset, not by content): once, new id.
// 4. A fires 3 sends sharing one clientOffset at once, without waiting in
//    between: all acknowledged, broadcast once.
// Exits 0 on success, 1 on failure.

import {
  check, checkShapes, log, makeClient, runMain, sendAcked, setStep, short, sleep, startRun, token,
  waitConnected, waitForTexts,
} from './e2e_common.mjs';

const { baseUrl } = startRun('duplicates.mjs', { usage: 'node duplicates.mjs URL' });
const DUPLICATE_GRACE_MS = 500;

function eventsOf(client, text, fromIndex) {
  return client.events.slice(fromIndex).filter((e) => e.text === text);
}

// waits for `text`, waits a little more, then checks it arrived exactly `times` times
async function expectBroadcast(clients, marks, text, times, what) {
  await Promise.all(clients.map((c) => waitForTexts(c, [text])));
  await sleep(DUPLICATE_GRACE_MS);
  const ids = [];
  clients.forEach((c, i) => {
    const got = eventsOf(c, text, marks[i]);
    check(
      got.length === times,
      `${c.name} ${what}`,
      () => `${JSON.stringify(short(text))} broadcast ${got.length} time(s), expected ${times}; ids ${JSON.stringify(got.map((e) => e.id))}`,
    );
    ids.push(...got.map((e) => e.id));
  });
  check(
    ids.every((id) => id === ids[0]),
    `${what}: same id everywhere`,
    () => `ids seen: ${JSON.stringify(ids)}`,
  );
  return ids[0];
}

async function main() {
  const tok = token();
  log(`duplicates against ${baseUrl}, token ${tok}`);

  setStep('connect');
  const a = makeClient(baseUrl, 'A');
  const b = makeClient(baseUrl, 'B');
  await Promise.all([waitConnected(a), waitConnected(b)]);
  await sleep(100); // history replay (if any) out of the way
  const marks = () => [a.events.length, b.events.length];

  setStep('same text, same clientOffset, 3 times');
  const text1 = `dup ${tok} one ${token()}`;
  const offset1 = `dup-${tok}-1`;
  let m = marks();
  for (let i = 1; i <= 3; i++) {
    await sendAcked(a, text1, offset1, `ack of send ${i}/3 with the same clientOffset`);
    log(`A: send ${i}/3 of ${JSON.stringify(offset1)} acknowledged`);
  }
  const id1 = await expectBroadcast([a, b], m, text1, 1, 'same clientOffset broadcast once');
  log(`text 1 broadcast once as #${id1}`);

  setStep('second text, other clientOffset');
  const text2 = `dup ${tok} two ${token()}`;
  m = marks();
  await sendAcked(a, text2, `dup-${tok}-2`, 'ack of the second text');
  const id2 = await expectBroadcast([a, b], m, text2, 1, 'second text broadcast once');
  check(id2 > id1, 'second text gets a newer id', () => `#${id2} is not above #${id1}`);
  log(`text 2 broadcast once as #${id2}`);

  setStep('same text, new clientOffset');
  m = marks();
  await sendAcked(a, text1, `dup-${tok}-3`, 'ack of the first text under a new clientOffset');
  const id3 = await expectBroadcast([a, b], m, text1, 1, 'same text under a new clientOffset broadcast once');
  check(id3 > id2, 'repeated text is a new message', () => `#${id3} is not above #${id2}`);
  log(`text 1 under a new clientOffset broadcast once as #${id3}`);

  setStep('3 concurrent sends with one clientOffset');
  const text4 = `dup ${tok} concurrent ${token()}`;
  const offset4 = `dup-${tok}-4`;
  m = marks();
  await Promise.all([1, 2, 3].map((i) => sendAcked(a, text4, offset4, `ack of concurrent send ${i}/3`)));
  log('A: 3 concurrent sends acknowledged');
  const id4 = await expectBroadcast([a, b], m, text4, 1, 'concurrent same clientOffset broadcast once');
  log(`concurrent text broadcast once as #${id4}`);

  checkShapes(a);
  checkShapes(b);
  check(a.socket.connected && b.socket.connected, 'still connected', 'a client dropped');
  return [id1, id2, id3, id4];
}

runMain(main, (ids) => `each message broadcast exactly once (ids ${ids.join(', ')})`);
