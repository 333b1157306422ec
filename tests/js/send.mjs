#!/usr/bin/env node
// Sends COUNT chat messages "PREFIX i" with client offsets "PREFIX-i", each acknowledged,
// as the Socket.IO tutorial's client does, with socket.io-client 4.8.1. Works against the
// tutorial's own Node server as well as emberchat.
//
// usage: node send.mjs URL COUNT PREFIX

import { makeClient, runMain, sendAllAcked, setStep, startRun, usageError, waitConnected } from './e2e_common.mjs';

const { baseUrl, args } = startRun('send.mjs', { usage: 'node send.mjs URL COUNT PREFIX', defaultTimeoutMs: 30_000 });
const count = Number(args[0]);
const prefix = args[1];
if (!Number.isInteger(count) || count < 1 || !prefix) usageError('COUNT must be a positive integer and PREFIX given');

async function main() {
  setStep('connect');
  const client = makeClient(baseUrl, 'sender', { record: false });
  await waitConnected(client);
  setStep('send');
  const texts = Array.from({ length: count }, (_, i) => `${prefix} ${i}`);
  await sendAllAcked(client, texts, prefix);
  return count;
}

runMain(main, (n) => `${n} message(s) sent and acknowledged`);
