// emberchat's service worker: keeps the app shell so the page opens with no network, says
// it is offline, and reconnects by itself once the network is back. Chat traffic
// (/socket.io/?...) is never cached: it goes to the network or fails.
'use strict';

const CACHE = 'emberchat-shell-v1';
const SHELL = ['/', '/app.js', '/style.css', '/socket.io/socket.io.js', '/manifest.webmanifest', '/icon.svg', '/favicon.svg'];

self.addEventListener('install', (event) => {
  // One by one: a file this build lacks (a gateway built without the client bundle) must
  // not keep the rest from being kept.
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => Promise.all(SHELL.map((path) => cache.add(path).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

// Network first, so an upgraded gateway's page is used as soon as it is reachable; the
// cached copy when the network fails.
self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const path = url.pathname === '/index.html' ? '/' : url.pathname;
  if (!SHELL.includes(path) || url.search) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(path, copy));
        }
        return response;
      })
      .catch(() => caches.match(path).then((cached) => cached || Response.error())),
  );
});
