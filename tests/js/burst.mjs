#!/usr/bin/env node
// Pipelined acknowledged sends, for durability checks (the harness may kill the
// server in the middle), with socket.io-client 4.8.1.
//
// usage: node burst.mjs URL OUTFILE [COUNT=5000] [IN_FLIGHT=200]
//
// One client (no reconnection) sends 'chat message' "burst-<i>" with clientOffset
// "burst-<i>", i = 0..COUNT-1, keeping up to IN_FLIGHT unacknowledged sends on
// the wire. Each acknowledged text is appended as a line to OUTFILE (truncated
// at start) the moment its ack arrives, so after a crash every line names a
// message the server has confirmed. Stops when all are acknowledged or when the
// connection is lost; exits 0 in both cases. Exits 1 if it cannot connect, if an
// ack times out or the server refuses a message while the connection is up, or
// on the overall timeout.

import { appendFileSync, writeFileSync } from 'node:fs';
import {
  describeError, finish, log, makeClient, setStep, startRun, usageError, waitConnected,
} from './e2e_common.mjs';

const USAGE = 'node burst.mjs URL OUTFILE [COUNT=5000] [IN_FLIGHT=200]';
const { baseUrl, args } = startRun('burst.mjs', { usage: USAGE, defaultTimeoutMs: 60_000 });
const [outFile, countArg = '5000', inFlightArg = '200'] = args;
const COUNT = Number(countArg);
const IN_FLIGHT = Number(inFlightArg);
if (!outFile) usageError(`OUTFILE missing (${USAGE})`);
if (!Number.isInteger(COUNT) || COUNT < 1) usageError(`COUNT must be a positive integer (${USAGE})`);
if (!Number.isInteger(IN_FLIGHT) || IN_FLIGHT < 1) usageError(`IN_FLIGHT must be a positive integer (${USAGE})`);
const ACK_TIMEOUT_MS = 15_000;

const st = { next: 0, inFlight: 0, acked: 0, refused: 0, timedOut: 0, dropped: 0, lost: false, startedAt: 0 };
const firstProblems = [];

function summary() {
  const secs = Math.max((Date.now() - st.startedAt) / 1000, 0.001);
  return (
    `acked ${st.acked} of ${COUNT} (sent ${st.next}, refused ${st.refused}, ack timeouts ${st.timedOut}, ` +
    `unacknowledged at disconnect ${st.dropped}) in ${secs.toFixed(2)} s, ${Math.round(st.acked / secs)} acks/s; ` +
    `connection lost: ${st.lost ? 'yes' : 'no'}`
  );
}

let client;

function maybeDone() {
  if (st.inFlight > 0) return;
  if (st.lost) {
    finish(0, `burst.mjs: connection lost; ${summary()}`);
  } else if (st.next >= COUNT) {
    if (st.refused > 0 || st.timedOut > 0) {
      finish(1, `burst.mjs: not every message was acknowledged while connected (${firstProblems.join('; ')}); ${summary()}`);
    } else {
      finish(0, `burst.mjs: all ${COUNT} acknowledged; ${summary()}`);
    }
  }
}

function send(i) {
  const text = `burst-${i}`;
  st.inFlight += 1;
  client.socket.timeout(ACK_TIMEOUT_MS).emit('chat message', text, text, (err, ...ackArgs) => {
    st.inFlight -= 1;
    if (err) {
      if (st.lost || !client.socket.connected) {
        st.dropped += 1; // the connection went away before the ack: outcome unknown
      } else {
        st.timedOut += 1;
        if (firstProblems.length < 3) firstProblems.push(`${text}: ${describeError(err)}`);
      }
    } else if (ackArgs.some((a) => a !== null && a !== undefined)) {
      st.refused += 1;
      if (firstProblems.length < 3) firstProblems.push(`${text} refused with ${JSON.stringify(ackArgs)}`);
    } else {
      appendFileSync(outFile, `${text}\n`);
      st.acked += 1;
    }
    pump();
    maybeDone();
  });
}

function pump() {
  while (!st.lost && client.socket.connected && st.inFlight < IN_FLIGHT && st.next < COUNT) {
    send(st.next);
    st.next += 1;
  }
}

async function main() {
  writeFileSync(outFile, '');
  log(`burst against ${baseUrl}: ${COUNT} messages, ${IN_FLIGHT} in flight, acked texts -> ${outFile}`);
  setStep('connect');
  client = makeClient(baseUrl, 'P', { auth: { serverOffset: 0 }, reconnection: false, record: false });
  client.socket.on('disconnect', () => {
    st.lost = true;
    // acks of sends still on the wire are failed by the client right after this event
    setImmediate(maybeDone);
  });
  await waitConnected(client);
  setStep('burst');
  st.startedAt = Date.now();
  pump();
}

main().catch((err) => finish(1, `burst.mjs at step "connect": ${err.message || err}`));
