// emberchat page logic (the Socket.IO tutorial's "client delivery" step).
// Loaded as an external file so a Content-Security-Policy of script-src 'self' suffices.
(function () {
  'use strict';

  const form = document.getElementById('form');
  const input = document.getElementById('input');
  const messages = document.getElementById('messages');
  const toggleButton = document.getElementById('toggle-btn');
  const statusPill = document.getElementById('status');

  function setStatus(state) {
    statusPill.dataset.state = state;
    statusPill.textContent = state;
    document.body.dataset.state = state;
  }

  if (typeof io !== 'function') {
    setStatus('disconnected');
    statusPill.title = 'Could not load /socket.io/socket.io.js';
    toggleButton.disabled = true;
    return;
  }

  // A gateway started with --token asks for it once; the page keeps it in localStorage.
  const TOKEN_KEY = 'emberchat-token';
  const auth = { serverOffset: 0 };
  const savedToken = window.localStorage.getItem(TOKEN_KEY);
  if (savedToken) auth.token = savedToken;

  let counter = 0;
  const socket = io({
    auth: auth,
    // the client retries a `chat message` until the server acknowledges it
    ackTimeout: 10000,
    retries: 3,
  });

  function refreshToggle() {
    // "active" means connected or trying to (re)connect
    toggleButton.textContent = socket.active ? 'Disconnect' : 'Connect';
  }

  function refreshStatus() {
    if (socket.connected) setStatus('connected');
    else if (socket.active) setStatus('connecting');
    else setStatus('disconnected');
    refreshToggle();
  }

  socket.on('connect', refreshStatus);
  socket.on('disconnect', refreshStatus);
  socket.on('connect_error', function (err) {
    if (err && err.message === 'unauthorized') {
      const token = window.prompt('This chat needs an access token:');
      if (token) {
        window.localStorage.setItem(TOKEN_KEY, token);
        socket.auth.token = token;
        socket.connect();
      } else {
        window.localStorage.removeItem(TOKEN_KEY);
      }
    }
    refreshStatus();
  });
  socket.io.on('reconnect_attempt', refreshStatus);
  refreshStatus();

  toggleButton.addEventListener('click', function (e) {
    e.preventDefault();
    if (socket.active) {
      socket.disconnect();
    } else {
      socket.connect();
    }
    refreshStatus();
  });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    if (input.value) {
      // compute a unique offset so the server can drop duplicates on retry
      const clientOffset = `${socket.id}-${counter++}`;
      socket.emit('chat message', input.value, clientOffset);
      input.value = '';
    }
    input.focus();
  });

  // Scrolling forces a layout; a replay delivers thousands of messages at once, so scroll
  // once per frame rather than once per message.
  let scrollPending = false;
  function scrollToBottomSoon() {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(function () {
      scrollPending = false;
      window.scrollTo(0, document.body.scrollHeight);
    });
  }

  // ('chat message', content, id[, recoveryOffset]) — extra arguments are ignored. The
  // server sends each id once, in order, across reconnects, so nothing is filtered here.
  socket.on('chat message', function (msg, serverOffset) {
    const id = Number(serverOffset);
    const hasId = Number.isInteger(id) && id > 0;

    const item = document.createElement('li');
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(msg); // never innerHTML: messages are untrusted
    item.appendChild(text);

    if (hasId) {
      item.dataset.id = String(id);
      const idLabel = document.createElement('span');
      idLabel.className = 'id';
      idLabel.textContent = `#${id}`;
      item.appendChild(idLabel);
    }

    messages.appendChild(item);
    scrollToBottomSoon();

    // remember the newest id so a reconnect only asks for what was missed
    if (hasId && id > (Number(socket.auth.serverOffset) || 0)) {
      socket.auth.serverOffset = id;
    }
  });
})();
