#!/usr/bin/env node
// Connection state recovery across servers on one Redis stream, with socket.io-client 4.8.1.
//
// usage: node cluster_recovery.mjs SENDER_URL HOP [HOP...]
//
// A client starts on the first HOP and moves to each next one, as a phone does when its
// board goes away: its Manager's URI is changed and its transport closed (the server sees a
// transport close), or, for a hop written kill=URL, the script prints "KILL" and waits for
// the harness to kill the current server. While it is away, a client on SENDER_URL sends
// three messages. On every new server the client must come back with socket.recovered true
// and get what it missed; over the whole run it must receive every message exactly once,
// in one order (stream ids increasing).

import {
  STEP_TIMEOUT_MS, check, log, makeClient, runMain, sendAcked, setStep, sleep, startRun, token,
  usageError, waitConnected, waitNextConnect, waitUntil,
} from './e2e_common.mjs';

const { baseUrl: senderUrl, args } = startRun('cluster_recovery.mjs', {
  usage: 'node cluster_recovery.mjs SENDER_URL HOP [HOP...]',
  defaultTimeoutMs: 60_000,
});
const hops = args.map((hop) => (hop.startsWith('kill=') ? { url: hop.slice(5), kill: true } : { url: hop, kill: false }));
if (hops.length < 2) usageError('give at least two hops');

const ID = /^(\d+)-(\d+)$/;
const key = (id) => {
  const [, ms, seq] = ID.exec(id);
  return BigInt(ms) * 1_000_000n + BigInt(seq);
};

async function main() {
  const run = token();
  const mine = (client) => client.events.filter((e) => typeof e.text === 'string' && e.text.includes(run));
  setStep('connect');
  const sender = makeClient(senderUrl, 'sender', { record: false });
  const roamer = makeClient(hops[0].url, 'roamer', { reconnection: true, reconnectionDelay: 200, reconnectionDelayMax: 400 });
  await Promise.all([waitConnected(sender), waitConnected(roamer)]);
  const sent = [];
  let n = 0;
  const sendThree = async (what) => {
    for (let i = 0; i < 3; i++) {
      const text = `recovery ${run} ${what} ${n++}`;
      sent.push(text);
      await sendAcked(sender, text, `${run}-${n}`);
    }
  };
  const receivedAll = () =>
    waitUntil(() => sent.every((t) => mine(roamer).some((e) => e.text === t)), STEP_TIMEOUT_MS, 'roamer receives every message', () =>
      `missing ${JSON.stringify(sent.filter((t) => !mine(roamer).some((e) => e.text === t)))}`,
    );
  await sleep(200);
  await sendThree('live on hop 1');
  await receivedAll();

  for (let h = 1; h < hops.length; h++) {
    const hop = hops[h];
    setStep(`hop ${h + 1}: to ${hop.url}${hop.kill ? ' after a kill' : ''}`);
    const back = waitNextConnect(roamer, 20_000);
    roamer.socket.io.uri = hop.url;
    if (hop.kill) {
      process.stdout.write('KILL\n');
    } else {
      roamer.socket.io.engine.close();
    }
    await waitUntil(() => !roamer.socket.connected, 20_000, 'roamer disconnected');
    await sendThree(`missed before hop ${h + 1}`);
    await back;
    const last = roamer.connects.at(-1);
    log(`hop ${h + 1}: connected to ${hop.url}, recovered=${last.recovered}`);
    check(last.recovered === true, `recovered on hop ${h + 1}`, () => `socket.recovered is ${last.recovered} on ${hop.url}`);
    await receivedAll();
    await sendThree(`live on hop ${h + 1}`);
    await receivedAll();
  }
  await sleep(300);
  const got = mine(roamer);
  check(got.length === sent.length, 'exactly once', () => `${got.length} received for ${sent.length} sent: ${JSON.stringify(got.map((e) => e.text))}`);
  for (let i = 1; i < got.length; i++) {
    check(key(got[i - 1].id) < key(got[i].id), 'one order', () => `${got[i - 1].id} then ${got[i].id}`);
  }
  return `${sent.length} messages over ${hops.length} servers`;
}

runMain(main, (what) => `cluster_recovery.mjs: recovered every time, ${what} exactly once`);
