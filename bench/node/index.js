'use strict';
// Peer server for the emberchat benchmarks: the chat server from the
// Socket.IO tutorial (https://socket.io/docs/v4/tutorial/), steps
// "server delivery" and "client delivery", with PORT/DB taken from the
// environment. SQLite is used with its defaults, as in the tutorial.

const express = require('express');
const { createServer } = require('node:http');
const { join } = require('node:path');
const { Server } = require('socket.io');
const sqlite3 = require('sqlite3');
const { open } = require('sqlite');

const PORT = Number(process.env.PORT || 3000);
const DB = process.env.DB || 'chat.db';

async function main() {
  const db = await open({ filename: DB, driver: sqlite3.Database });

  await db.exec(`
    CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      client_offset TEXT UNIQUE,
      content TEXT
    );
  `);

  const app = express();
  const server = createServer(app);
  const io = new Server(server, { connectionStateRecovery: {} });

  // The tutorial's page (rewritten here: bench/node/index.html), the anchor of the page
  // scenario.
  for (const [route, file] of [['/', 'index.html'], ['/page.js', 'page.js'], ['/style.css', 'style.css']]) {
    app.get(route, (_req, res) => res.sendFile(join(__dirname, file)));
  }

  io.on('connection', async (socket) => {
    socket.on('chat message', async (msg, clientOffset, callback) => {
      let result;
      try {
        result = await db.run(
          'INSERT INTO messages (content, client_offset) VALUES (?, ?)',
          msg,
          clientOffset,
        );
      } catch (e) {
        if (e.errno === 19 /* SQLITE_CONSTRAINT */) {
          // already stored: acknowledge so the client stops retrying
          if (typeof callback === 'function') callback();
        }
        // any other error: no ack, the client will retry
        return;
      }
      io.emit('chat message', msg, result.lastID);
      if (typeof callback === 'function') callback();
    });

    if (!socket.recovered) {
      // new or unrecoverable session: send what the client has not seen yet
      try {
        await db.each(
          'SELECT id, content FROM messages WHERE id > ?',
          [socket.handshake.auth.serverOffset || 0],
          (_err, row) => {
            socket.emit('chat message', row.content, row.id);
          },
        );
      } catch (e) {
        // something went wrong; the client will get the rows on its next connection
      }
    }
  });

  server.listen(PORT, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${PORT}`);
  });
}

main();
