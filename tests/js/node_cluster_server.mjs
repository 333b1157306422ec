#!/usr/bin/env node
// A Node socket.io 4.8 server with socket.io's Redis Streams adapter
// (@socket.io/redis-streams-adapter 0.3.1): the tutorial's chat with the stream as its log,
// to run beside emberchat gateways on the same Redis stream.
//
// usage: node node_cluster_server.mjs REDIS_URL [STREAM] [MAX_LEN]
//
// Listens on a free port of 127.0.0.1 and prints "listening on http://127.0.0.1:PORT".
// A ('chat message', text, clientOffset, ack) is broadcast to everyone with io.emit (the
// adapter appends it to the stream; with connection state recovery on, every client gets
// the entry's id as the last argument) and acked. It keeps no database and does not
// deduplicate client offsets: that is emberchat's addition. Stops on SIGTERM.

import { createServer } from 'node:http';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';

// MAX_LEN: entries the stream keeps (the adapter's maxLen, 10,000 by default); the benchmark
// gives emberchat's default, 1,000,000, so that a reader falling behind loses nothing.
const [redisUrl, streamName = 'socket.io', maxLenArg] = process.argv.slice(2);
if (!redisUrl) {
  console.error('usage: node node_cluster_server.mjs REDIS_URL [STREAM] [MAX_LEN]');
  process.exit(2);
}

const redis = createClient({ url: redisUrl });
redis.on('error', (err) => console.error(`redis: ${err.message}`));
await redis.connect();

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: createAdapter(redis, { streamName, ...(maxLenArg ? { maxLen: Number(maxLenArg) } : {}) }),
  connectionStateRecovery: {},
});

io.on('connection', (socket) => {
  // What this server knows of the cluster: serverCount() counts the subscribers of the
  // adapter's pub/sub channel (emberchat gateways do not subscribe), and fetchSockets()
  // waits for serverCount() - 1 answers.
  socket.on('cluster info', async (ack) => {
    const started = Date.now();
    const sockets = await io.fetchSockets();
    const serverCount = await io.of('/').adapter.serverCount();
    ack({ serverCount, sockets: sockets.length, ms: Date.now() - started });
  });
  socket.on('chat message', (msg, clientOffset, ack) => {
    if (typeof msg !== 'string') return;
    io.emit('chat message', msg);
    if (typeof ack === 'function') ack();
  });
});

httpServer.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${httpServer.address().port}`);
});

process.on('SIGTERM', () => {
  io.close();
  redis.quit().finally(() => process.exit(0));
});
