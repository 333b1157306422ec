// emberchat page: the Socket.IO tutorial's chat ("client delivery"), grown into one a LAN
// uses daily. It opts into the server's additions with auth.emberchat = 1 (README,
// "Protocol"): names, times, history pages, presence and typing.
// Loaded as an external file so a Content-Security-Policy of script-src 'self' suffices.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const form = $('form');
  const input = $('input');
  const list = $('messages');
  const scroller = $('scroller');
  const toggleButton = $('toggle-btn');
  const statusPill = $('status');
  const olderButton = $('older-btn');
  const newestButton = $('newest-btn');
  const announcer = $('announcer');
  const typingLine = $('typing');
  const peopleButton = $('people-btn');
  const peoplePanel = $('people');
  const peopleList = $('people-list');
  const menuButton = $('menu-btn');
  const menuPanel = $('menu');
  const nameForm = $('name-form');
  const nameInput = $('name-input');
  const nameError = $('name-error');
  const themeButton = $('theme-btn');
  const notifyButton = $('notify-btn');
  const offlineBanner = $('offline');

  // Items in the list at most (messages, day separators, notices): a tab open for a day of
  // busy chat stays light. The far end is trimmed and fetched again when scrolled back to.
  const MAX_ITEMS = 600;
  const PAGE = 50;
  // On (re)connect the server replays at most this many; beyond it, a marker offers the rest.
  const NEWEST = 100;
  const ACK_TIMEOUT_MS = 4000;
  const SEND_TRIES = 3;
  const TYPING_EVERY_MS = 3000;
  const TYPING_SHOWN_MS = 5000;
  const TOKEN_KEY = 'emberchat-token';
  const NAME_KEY = 'emberchat-name';
  const THEME_KEY = 'emberchat-theme';
  const NOTIFY_KEY = 'emberchat-notify';
  const store = window.localStorage;

  function setStatus(state) {
    statusPill.dataset.state = state;
    statusPill.textContent = state;
    document.body.dataset.state = state;
  }

  // ------------------------------------------------------------------ theme
  const THEMES = ['auto', 'light', 'dark'];
  function applyTheme(theme) {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    themeButton.textContent = `Theme: ${theme}`;
  }
  applyTheme(THEMES.includes(store.getItem(THEME_KEY)) ? store.getItem(THEME_KEY) : 'auto');
  themeButton.addEventListener('click', function () {
    const now = document.documentElement.dataset.theme || 'auto';
    const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
    store.setItem(THEME_KEY, next);
    applyTheme(next);
  });

  // ------------------------------------------------------------------ offline shell
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js').catch(function () { /* works without */ });
  }
  function refreshOnline() {
    offlineBanner.hidden = navigator.onLine;
  }
  let socket = null;
  window.addEventListener('online', function () {
    refreshOnline();
    // Reconnect now rather than at the next backoff step.
    if (socket && !socket.connected && socket.active) {
      socket.disconnect();
      socket.connect();
    }
  });
  window.addEventListener('offline', refreshOnline);
  refreshOnline();

  if (typeof io !== 'function') {
    setStatus('disconnected');
    statusPill.title = 'Could not load /socket.io/socket.io.js';
    toggleButton.disabled = true;
    return;
  }

  // ------------------------------------------------------------------ connection
  let myName = store.getItem(NAME_KEY) || null;
  const auth = { serverOffset: 0, emberchat: 1, newest: NEWEST };
  if (myName) auth.name = myName;
  const savedToken = store.getItem(TOKEN_KEY);
  if (savedToken) auth.token = savedToken;

  socket = io({ auth: auth });
  let connectedAt = 0;

  function refreshStatus() {
    if (socket.connected) setStatus('connected');
    else if (socket.active) setStatus('connecting');
    else setStatus('disconnected');
    // "active" means connected or trying to (re)connect
    toggleButton.textContent = socket.active ? 'Disconnect' : 'Connect';
  }

  socket.on('connect', function () {
    connectedAt = Date.now();
    refreshStatus();
  });
  socket.on('disconnect', refreshStatus);
  socket.on('connect_error', function (err) {
    const message = (err && err.message) || '';
    if (message === 'unauthorized') {
      const token = window.prompt('This chat needs an access token:');
      if (token) {
        store.setItem(TOKEN_KEY, token);
        socket.auth.token = token;
        socket.connect();
      } else {
        store.removeItem(TOKEN_KEY);
      }
    } else if (message.startsWith('name ')) {
      // The saved name is not one the server takes: join without it and ask again.
      setName(null);
      showNameForm(message);
      socket.connect();
    }
    refreshStatus();
  });
  socket.io.on('reconnect_attempt', refreshStatus);
  refreshStatus();

  toggleButton.addEventListener('click', function (e) {
    e.preventDefault();
    if (socket.active) socket.disconnect();
    else socket.connect();
    refreshStatus();
  });

  // ------------------------------------------------------------------ the list
  // Stored messages are listed in id order, [oldestId, newestId]; `live` says the bottom of
  // the list is the newest message, so broadcasts are appended; otherwise they are left for
  // scrolling down to fetch. `lastId` is the newest id the server has told us of. Below
  // them, the outbox: your own messages not yet in their place (sending, failed, or stored
  // but with messages before them still to come). `pinned`: the reader is at the bottom.
  let oldestId = 0;
  let newestId = 0;
  let lastId = 0;
  let live = true;
  let hasOlder = false;
  let busy = false;
  let pinned = true;
  const itemCount = () => list.childElementCount;
  const isOutbox = (node) => node.classList.contains('outbox');
  const byId = (id) => list.querySelector(`li.msg[data-id="${id}"]:not(.outbox)`);
  const outboxById = (id) => list.querySelector(`li.outbox[data-id="${id}"]`);

  function dayOf(time) {
    const d = new Date(time);
    return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
  }

  function dayLabel(time) {
    const d = new Date(time);
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    if (dayOf(time) === dayOf(today.getTime())) return 'Today';
    if (dayOf(time) === dayOf(yesterday.getTime())) return 'Yesterday';
    return d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  }

  function timeLabel(time) {
    return new Date(time).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }

  // One message: <li data-id data-time><span.meta>name time #id</span><span.text/></li>.
  // Text only, never innerHTML: messages are untrusted.
  function messageItem(m) {
    const item = document.createElement('li');
    item.className = 'msg';
    const meta = document.createElement('span');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'name';
    who.textContent = m.name || 'anonymous';
    if (!m.name) who.classList.add('anon');
    meta.appendChild(who);
    const when = document.createElement('time');
    meta.appendChild(when);
    const idLabel = document.createElement('span');
    idLabel.className = 'id';
    meta.appendChild(idLabel);
    item.appendChild(meta);
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(m.text);
    item.appendChild(text);
    if (m.name && m.name === myName) item.classList.add('mine');
    stamp(item, m.id, m.time);
    return item;
  }

  function stamp(item, id, time) {
    if (Number.isInteger(id) && id > 0) {
      item.dataset.id = String(id);
      item.querySelector('.id').textContent = `#${id}`;
    }
    if (Number.isFinite(time) && time > 0) {
      item.dataset.time = String(time);
      const when = item.querySelector('time');
      when.dateTime = new Date(time).toISOString();
      when.textContent = timeLabel(time);
    }
  }

  function isMessage(node) {
    return node && node.classList && node.classList.contains('msg');
  }

  // Day separators: one before each message whose day differs from the message above it.
  function refreshDays() {
    let previous = null;
    for (let node = list.firstElementChild; node; ) {
      const next = node.nextElementSibling;
      if (node.classList.contains('day')) {
        node.remove();
      } else if (isMessage(node) && node.dataset.time) {
        const time = Number(node.dataset.time);
        const day = dayOf(time);
        if (day !== previous) list.insertBefore(separator(time), node);
        previous = day;
      }
      node = next;
    }
  }

  function separator(time) {
    const item = document.createElement('li');
    item.className = 'day';
    item.setAttribute('role', 'separator');
    item.textContent = dayLabel(time);
    return item;
  }

  function appendDay(item) {
    // Only the last message matters when appending.
    if (!item.dataset.time) return;
    let above = item.previousElementSibling;
    while (above && !(isMessage(above) && above.dataset.time)) above = above.previousElementSibling;
    const day = dayOf(Number(item.dataset.time));
    if (!above || dayOf(Number(above.dataset.time)) !== day) {
      list.insertBefore(separator(Number(item.dataset.time)), item);
    }
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  let scrollPending = false;
  function scrollToBottomSoon() {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(function () {
      scrollPending = false;
      scroller.scrollTop = scroller.scrollHeight;
    });
  }

  function refreshButtons() {
    olderButton.hidden = !hasOlder;
    if (!live || lastId > newestId) newestButton.hidden = false;
    else if (pinned) newestButton.hidden = true;
  }

  // Puts an item at the live end: below the stored messages, above the outbox.
  function insertLive(item) {
    let outbox = null;
    for (let node = list.lastElementChild; node && (node === item || isOutbox(node)); node = node.previousElementSibling) {
      if (node !== item) outbox = node;
    }
    list.insertBefore(item, outbox);
  }

  // Puts a stored message (one of yours whose place came up) among the others by its id.
  function placeById(item, id) {
    let after = list.lastElementChild;
    while (after && (isOutbox(after) || after === item || !(isMessage(after) && after.dataset.id) || Number(after.dataset.id) > id)) {
      after = after.previousElementSibling;
    }
    list.insertBefore(item, after ? after.nextElementSibling : list.firstElementChild);
    appendDay(item);
  }

  // Lists a stored message that comes next at the live end (a broadcast, or a page read
  // forward): once, and in place of your own copy when it is one of yours.
  function placeStored(m) {
    const placed = byId(m.id);
    if (placed) return placed;
    let item = outboxById(m.id);
    if (item) {
      item.classList.remove('outbox');
      stamp(item, m.id, m.time);
    } else {
      item = messageItem(m);
    }
    insertLive(item);
    appendDay(item);
    if (!oldestId) oldestId = m.id;
    newestId = Math.max(newestId, m.id);
    settleOutbox();
    return item;
  }

  // Your stored messages whose place has passed (their id came while the list was elsewhere)
  // go to it, or away when it is above the list (they are in the history).
  function settleOutbox() {
    for (const item of Array.from(list.querySelectorAll('li.outbox[data-id]'))) {
      const id = Number(item.dataset.id);
      if (id > newestId) continue;
      item.classList.remove('outbox');
      if (id < oldestId) item.remove();
      else placeById(item, id);
    }
  }

  // Keeps the list within its bound after something was added at the live end: the end
  // farther from what the reader sees goes (the bottom: the list then stops being live).
  function bound() {
    if (itemCount() <= MAX_ITEMS) return;
    const middle = scroller.scrollTop + scroller.clientHeight / 2;
    if (pinned || middle > scroller.scrollHeight / 2) trimTop();
    else trimBottom();
  }

  // A broadcast, live.
  function appendMessage(m) {
    const item = placeStored(m);
    bound();
    if (pinned) scrollToBottomSoon();
    else newestButton.hidden = false;
    return item;
  }

  // Runs `change` (which adds or removes items above what the reader sees) and scrolls by
  // as much, so that the same messages stay in view. Done here rather than by the browser's
  // scroll anchoring (off in the stylesheet), which not every browser has.
  function keepingView(change) {
    const height = scroller.scrollHeight;
    const top = scroller.scrollTop;
    change();
    scroller.scrollTop = top + (scroller.scrollHeight - height);
  }

  // Drops the oldest items down to the bound.
  function trimTop() {
    const trim = function () {
      while (itemCount() > MAX_ITEMS - PAGE && list.firstElementChild && !isOutbox(list.firstElementChild)) {
        list.firstElementChild.remove();
      }
    };
    // At the bottom the view follows the newest anyway.
    if (pinned) trim();
    else keepingView(trim);
    const first = firstMessage();
    oldestId = first ? Number(first.dataset.id) : 0;
    hasOlder = true;
    refreshDays();
    refreshButtons();
  }

  // Drops the newest stored items (never the outbox) down to the bound; reading forward
  // fetches them again. A gap marker goes too: reading forward fills what it stood for.
  function trimBottom() {
    let node = list.lastElementChild;
    while (itemCount() > MAX_ITEMS - PAGE && node) {
      const above = node.previousElementSibling;
      if (!isOutbox(node)) node.remove();
      node = above;
    }
    for (const gap of Array.from(list.querySelectorAll('li.gap'))) gap.remove();
    const last = lastMessage();
    newestId = last ? Number(last.dataset.id) : 0;
    live = false;
    refreshButtons();
  }

  function firstMessage() {
    let node = list.firstElementChild;
    while (node && !(isMessage(node) && node.dataset.id && !isOutbox(node))) node = node.nextElementSibling;
    return node;
  }

  function lastMessage() {
    let node = list.lastElementChild;
    while (node && !(isMessage(node) && node.dataset.id && !isOutbox(node))) node = node.previousElementSibling;
    return node;
  }

  // ------------------------------------------------------------------ history pages
  function history(query) {
    return new Promise(function (resolve, reject) {
      socket.timeout(10000).emit('history', query, function (err, reply) {
        if (err) reject(err);
        else if (!reply || reply.error || !Array.isArray(reply.messages)) reject(new Error(reply && reply.error));
        else resolve(reply);
      });
    });
  }

  async function loadOlder() {
    if (busy || !hasOlder || !socket.connected) return;
    busy = true;
    const before = oldestId;
    try {
      const reply = await history({ before: before || undefined, limit: PAGE });
      // The top moved meanwhile (trimmed by live messages): this page no longer joins it.
      if (oldestId !== before) return;
      keepingView(function () {
        const fragment = document.createDocumentFragment();
        for (const m of reply.messages) fragment.appendChild(messageItem(m));
        list.insertBefore(fragment, list.firstChild);
        refreshDays();
      });
      if (reply.messages.length) oldestId = reply.messages[0].id;
      hasOlder = reply.more;
      if (itemCount() > MAX_ITEMS) trimBottom();
    } catch (e) {
      // Offline or busy: the next scroll tries again.
    } finally {
      busy = false;
      refreshButtons();
    }
  }

  // Reads forward from the bottom of the list until it meets the live end.
  async function loadNewer() {
    if (busy || live || !socket.connected) return;
    busy = true;
    try {
      const reply = await history({ after: newestId, limit: PAGE });
      for (const m of reply.messages) placeStored(m);
      if (!reply.more) live = true;
      if (itemCount() > MAX_ITEMS) trimTop();
    } catch (e) {
      // tried again on the next scroll
    } finally {
      busy = false;
      refreshButtons();
    }
    if (live && lastId > newestId) {
      // Broadcasts that came while this page was read: fetch them too.
      live = false;
      loadNewer();
    }
  }

  // Jumps to the newest messages (after reading far back, or to send).
  async function jumpToNewest() {
    if (live) {
      scrollToBottomSoon();
      return;
    }
    if (busy) return;
    busy = true;
    try {
      const reply = await history({ limit: PAGE });
      for (const node of Array.from(list.children)) {
        if (!isOutbox(node)) node.remove();
      }
      oldestId = reply.messages.length ? reply.messages[0].id : 0;
      newestId = 0;
      for (const m of reply.messages) placeStored(m);
      hasOlder = reply.more;
      live = true;
      refreshDays();
      scrollToBottomSoon();
    } catch (e) {
      // stays where it is
    } finally {
      busy = false;
      refreshButtons();
    }
    if (lastId > newestId) {
      live = false;
      loadNewer();
    }
  }

  scroller.addEventListener('scroll', function () {
    // While a scroll to the bottom is on its way, the list grows under a stale position.
    if (!scrollPending) pinned = nearBottom();
    if (scroller.scrollTop < 200) loadOlder();
    if (pinned && !live) loadNewer();
    if (pinned && live) newestButton.hidden = true;
  }, { passive: true });
  olderButton.addEventListener('click', loadOlder);
  newestButton.addEventListener('click', jumpToNewest);

  // ------------------------------------------------------------------ long absence
  // ('missed', {count, more, after, before[, trimmed]}): the replay skipped `count` messages
  // between `after` and `before`. On a first visit that is simply older history; after an
  // absence a marker offers them, a page at a time. `trimmed`: some of what came after
  // `after` is no longer kept (retention, or the shared stream's length), so it is said.
  socket.on('missed', function (gap) {
    if (!gap || !Number.isInteger(gap.count)) return;
    if (gap.trimmed === true && lastMessage()) {
      notice('Some messages from while you were away are no longer kept');
    }
    if (gap.count === 0) return;
    if (!lastMessage() || !live) {
      hasOlder = true;
      refreshButtons();
      return;
    }
    const item = document.createElement('li');
    item.className = 'gap';
    const button = document.createElement('button');
    button.type = 'button';
    item.appendChild(button);
    item.dataset.after = String(gap.after);
    item.dataset.before = String(gap.before);
    const label = (n, more) => `${n}${more ? '+' : ''} earlier message${n === 1 && !more ? '' : 's'} — load`;
    button.textContent = label(gap.count, gap.more);
    let left = gap.count;
    button.addEventListener('click', async function () {
      if (button.disabled || busy) return;
      button.disabled = true;
      busy = true;
      try {
        const reply = await history({ after: Number(item.dataset.after), before: Number(item.dataset.before), limit: PAGE });
        const fragment = document.createDocumentFragment();
        for (const m of reply.messages) fragment.appendChild(messageItem(m));
        list.insertBefore(fragment, item);
        if (reply.messages.length) item.dataset.after = String(reply.messages[reply.messages.length - 1].id);
        left = Math.max(0, left - reply.messages.length);
        if (!reply.more) item.remove();
        else button.textContent = label(left, gap.more);
        refreshDays();
        if (itemCount() > MAX_ITEMS) trimTop();
      } catch (e) {
        // try again on the next click
      } finally {
        button.disabled = false;
        busy = false;
      }
    });
    insertLive(item);
    scrollToBottomSoon();
  });

  // ------------------------------------------------------------------ receiving
  // ('chat message', content, id, {name, time, offset}[, recoveryOffset]). The server sends
  // each id once, in order, across reconnects.
  socket.on('chat message', function (msg, serverOffset, meta) {
    const id = Number(serverOffset);
    if (!Number.isInteger(id) || id <= 0) return;
    meta = meta && typeof meta === 'object' ? meta : {};
    const m = { id: id, text: msg, name: typeof meta.name === 'string' ? meta.name : null, time: meta.time };
    if (id > lastId) lastId = id;
    socket.auth.serverOffset = lastId;
    stopTyping(m.name);
    // Your own copy carries your client offset (nobody else's does).
    const own = typeof meta.offset === 'string' && pending.get(meta.offset);
    if (own) confirm(own, id, m.time);
    if (live && id > newestId) appendMessage(m);
    refreshButtons();
    // Announced (politely) only once the replay that follows a connect is over.
    if (!own && Date.now() - connectedAt > 1500) {
      announce(`${m.name || 'anonymous'}: ${String(msg)}`);
      attention(m);
    }
  });

  function announce(text) {
    announcer.textContent = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  }

  // ------------------------------------------------------------------ sending
  // Each message is shown at once as pending, confirmed when stored, and marked failed (with
  // a retry that reuses its client offset, so it is still stored once) when tries run out.
  const pending = new Map();

  function newOffset() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    const text = input.value;
    if (text.trim()) {
      if (!live) jumpToNewest();
      const entry = { text: text, offset: newOffset(), tries: 0, state: 'waiting', item: null };
      entry.item = messageItem({ text: text, name: myName });
      entry.item.classList.add('mine', 'outbox', 'pending');
      list.appendChild(entry.item);
      pinned = true;
      scrollToBottomSoon();
      pending.set(entry.offset, entry);
      send(entry);
      input.value = '';
      // The next message's first keystroke says "typing" again.
      lastTypingSent = 0;
    }
    input.focus();
  });

  function setState(entry, state, note) {
    entry.state = state;
    const item = entry.item;
    item.classList.toggle('pending', state === 'waiting');
    item.classList.toggle('failed', state === 'failed');
    item.dataset.state = state;
    let status = item.querySelector('.send-state');
    if (state === 'confirmed') {
      if (status) status.remove();
      return;
    }
    if (!status) {
      status = document.createElement('span');
      status.className = 'send-state';
      item.appendChild(status);
    }
    status.textContent = '';
    if (state === 'waiting') {
      status.textContent = 'sending…';
    } else {
      const why = document.createElement('span');
      why.textContent = note ? `not sent (${note}) ` : 'not sent ';
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.textContent = 'Retry';
      retry.addEventListener('click', function () {
        entry.tries = 0;
        send(entry);
      });
      status.appendChild(why);
      status.appendChild(retry);
    }
  }

  function send(entry) {
    setState(entry, 'waiting');
    entry.tries += 1;
    const attempt = entry.tries;
    socket.timeout(ACK_TIMEOUT_MS).emit('chat message', entry.text, entry.offset, function (err, reply) {
      if (entry.state !== 'waiting' || attempt !== entry.tries) return;
      if (!err && !(reply && reply.error)) {
        confirm(entry, reply && reply.id, null);
        return;
      }
      const reason = reply && reply.error;
      const final = reason && /longer than|must be|invalid/.test(reason);
      if (!final && entry.tries < SEND_TRIES) {
        window.setTimeout(function () {
          if (entry.state === 'waiting' && attempt === entry.tries) send(entry);
        }, reason ? 1000 : 0);
      } else {
        setState(entry, 'failed', reason || 'no answer');
      }
    });
  }

  // Stored (the ack or your own broadcast says so). The message keeps its place at the
  // bottom until its id comes in order, so messages sent before it are never skipped.
  function confirm(entry, id, time) {
    if (entry.state === 'confirmed') return;
    pending.delete(entry.offset);
    setState(entry, 'confirmed');
    if (!(Number.isInteger(id) && id > 0)) {
      entry.item.classList.remove('outbox');
      return;
    }
    const twin = byId(id);
    if (twin) {
      // Listed already, from a replay or a page read: that copy stays.
      entry.item.remove();
      twin.classList.add('mine');
      entry.item = twin;
      return;
    }
    stamp(entry.item, id, time);
    if (live) settleOutbox();
  }

  // ------------------------------------------------------------------ names
  function setName(name) {
    myName = name;
    if (name) {
      store.setItem(NAME_KEY, name);
      socket.auth.name = name;
    } else {
      store.removeItem(NAME_KEY);
      delete socket.auth.name;
    }
  }

  function showNameForm(error) {
    nameForm.hidden = false;
    nameInput.value = myName || '';
    nameError.textContent = error || '';
    nameInput.focus();
  }

  nameForm.addEventListener('submit', function (e) {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      nameError.textContent = 'name is empty';
      return;
    }
    socket.timeout(5000).emit('name', name, function (err, reply) {
      if (err) {
        nameError.textContent = 'not connected, try again';
      } else if (reply && reply.error) {
        nameError.textContent = reply.error;
      } else {
        setName(reply.name);
        nameForm.hidden = true;
        nameError.textContent = '';
        input.focus();
      }
    });
  });
  $('name-later').addEventListener('click', function () {
    nameForm.hidden = true;
    store.setItem(NAME_KEY + '-later', '1');
    input.focus();
  });
  $('name-btn').addEventListener('click', function () {
    togglePanel(menuPanel, menuButton, false);
    showNameForm();
  });
  if (!myName && !store.getItem(NAME_KEY + '-later')) showNameForm();

  // ------------------------------------------------------------------ panels
  function togglePanel(panel, button, open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  }
  menuButton.addEventListener('click', function () {
    togglePanel(menuPanel, menuButton, menuPanel.hidden);
    togglePanel(peoplePanel, peopleButton, false);
  });
  peopleButton.addEventListener('click', function () {
    togglePanel(peoplePanel, peopleButton, peoplePanel.hidden);
    togglePanel(menuPanel, menuButton, false);
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') {
      togglePanel(menuPanel, menuButton, false);
      togglePanel(peoplePanel, peopleButton, false);
      nameForm.hidden = true;
    }
  });

  // ------------------------------------------------------------------ presence
  // ('presence', {count, anonymous, names, joined?, left?}): the names are the first 50.
  socket.on('presence', function (p) {
    if (!p || !Number.isInteger(p.count)) return;
    peopleButton.textContent = `${p.count} online`;
    peopleList.textContent = '';
    const names = Array.isArray(p.names) ? p.names : [];
    for (const name of names) {
      const item = document.createElement('li');
      item.textContent = String(name);
      if (name === myName) item.className = 'me';
      peopleList.appendChild(item);
    }
    const unlisted = p.count - names.length - (p.anonymous || 0);
    if (unlisted > 0) addPerson(`and ${unlisted} more`);
    if (p.anonymous > 0) addPerson(`${p.anonymous} anonymous`);
    const joined = (p.joined || []).filter((n) => n !== myName);
    const left = (p.left || []).filter((n) => n !== myName);
    const more = (n) => (n > 0 ? ` and ${n} more` : '');
    if (joined.length) notice(`${joined.join(', ')}${more(p.more_joined)} joined`);
    if (left.length) notice(`${left.join(', ')}${more(p.more_left)} left`);
  });

  function addPerson(text) {
    const item = document.createElement('li');
    item.className = 'others';
    item.textContent = text;
    peopleList.appendChild(item);
  }

  // Joins and leaves: quiet lines in the list, never stored.
  function notice(text) {
    if (!live) return;
    const item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    insertLive(item);
    bound();
    if (pinned) scrollToBottomSoon();
  }

  // ------------------------------------------------------------------ typing
  const typers = new Map();
  let lastTypingSent = 0;
  input.addEventListener('input', function () {
    const now = Date.now();
    if (input.value && myName && socket.connected && now - lastTypingSent > TYPING_EVERY_MS) {
      lastTypingSent = now;
      socket.volatile.emit('typing');
    }
  });
  socket.on('typing', function (name) {
    if (typeof name !== 'string' || name === myName) return;
    typers.set(name, Date.now() + TYPING_SHOWN_MS);
    renderTyping();
  });
  function stopTyping(name) {
    if (name && typers.delete(name)) renderTyping();
  }
  function renderTyping() {
    const now = Date.now();
    for (const [name, until] of typers) if (until <= now) typers.delete(name);
    const names = Array.from(typers.keys());
    if (names.length === 0) typingLine.textContent = '';
    else if (names.length === 1) typingLine.textContent = `${names[0]} is typing…`;
    else if (names.length <= 3) typingLine.textContent = `${names.join(', ')} are typing…`;
    else typingLine.textContent = `${names.length} people are typing…`;
  }
  window.setInterval(renderTyping, 1000);

  // ------------------------------------------------------------------ attention
  let unread = 0;
  const baseTitle = document.title;
  function attention(m) {
    if (!document.hidden) return;
    unread += 1;
    document.title = `(${unread}) ${baseTitle}`;
    if (store.getItem(NOTIFY_KEY) === 'on' && window.Notification && Notification.permission === 'granted') {
      try {
        new Notification(m.name || 'anonymous', { body: String(m.text).slice(0, 200), tag: 'emberchat', icon: '/icon.svg' });
      } catch (e) {
        // some browsers allow notifications only from the service worker
      }
    }
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      unread = 0;
      document.title = baseTitle;
    }
  });

  function refreshNotify() {
    const on = store.getItem(NOTIFY_KEY) === 'on' && window.Notification && Notification.permission === 'granted';
    notifyButton.textContent = on ? 'Turn off notifications' : 'Turn on notifications';
    notifyButton.hidden = !window.Notification;
  }
  notifyButton.addEventListener('click', function () {
    if (store.getItem(NOTIFY_KEY) === 'on') {
      store.removeItem(NOTIFY_KEY);
      refreshNotify();
      return;
    }
    Notification.requestPermission().then(function (permission) {
      if (permission === 'granted') store.setItem(NOTIFY_KEY, 'on');
      refreshNotify();
    });
  });
  refreshNotify();
})();
