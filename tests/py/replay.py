#!/usr/bin/env python3
"""Replay after a disconnect, and deduplication by clientOffset, with python-socketio.

usage: python replay.py URL

1. Client A connects with auth {'serverOffset': 0} and tracks the last id it
   receives; it sends 2 messages with call('chat message', (text, offset)) and
   receives them; A disconnects; client B sends 3 messages; A connects again
   with auth {'serverOffset': last_id}: it must receive exactly those 3
   messages (ids as B saw them), in order, once each, and nothing older.
2. A calls the same (text, clientOffset) twice: both calls are acknowledged
   without error and A and B see the message broadcast exactly once.
Exits 0 on success, 1 with a message naming the failed check otherwise.
env: E2E_TIMEOUT_MS (overall timeout, default 20000; E2E_TIMEOUT_S also accepted).
"""

import os
import secrets
import sys
import threading
import time
import urllib.parse

import socketio

if os.environ.get("E2E_TIMEOUT_MS"):
    OVERALL_TIMEOUT_S = float(os.environ["E2E_TIMEOUT_MS"]) / 1000
else:
    OVERALL_TIMEOUT_S = float(os.environ.get("E2E_TIMEOUT_S", "20"))
STEP_TIMEOUT_S = 5.0
DUPLICATE_GRACE_S = 0.5

STARTED = time.monotonic()
STEP = "start"


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.2f}s] {msg}", flush=True)


class CheckFailed(Exception):
    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")


def check(cond, name, detail):
    if not cond:
        raise CheckFailed(name, detail() if callable(detail) else detail)


def hard_exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never wait for client background threads that might be stuck
    os._exit(code)


def on_overall_timeout():
    print(f"FAIL replay.py: overall timeout after {OVERALL_TIMEOUT_S:g} s (stuck at step: {STEP})",
          file=sys.stderr, flush=True)
    hard_exit(1)


class Peer:
    """One Socket.IO client plus every ('chat message', text, id, offset) it received."""

    def __init__(self, name, url):
        self.name = name
        self.url = url
        # reconnection off: a broken connection must fail the check, not be hidden
        self.sio = socketio.Client(reconnection=False)
        self.events = []  # (text, id, args)
        self.last_id = 0
        self.cond = threading.Condition()
        self.sio.on("chat message", self._on_chat_message)
        self.sio.on("disconnect", self._on_disconnect)

    def _on_chat_message(self, *args):
        with self.cond:
            text = args[0] if args else None
            msg_id = args[1] if len(args) > 1 else None
            self.events.append((text, msg_id, args))
            if type(msg_id) is int and msg_id > self.last_id:
                self.last_id = msg_id
            self.cond.notify_all()

    def _on_disconnect(self, *args):
        log(f"{self.name}: disconnected ({args[0] if args else 'no reason given'})")

    def connect(self, server_offset):
        try:
            self.sio.connect(self.url, auth={"serverOffset": server_offset}, wait_timeout=STEP_TIMEOUT_S)
        except socketio.exceptions.ConnectionError as e:
            raise CheckFailed(f"{self.name} connect", f"{type(e).__name__}: {e}") from None
        check(self.sio.connected, f"{self.name} connect", "client reports not connected")
        log(f"{self.name}: connected with serverOffset {server_offset}, sid={self.sio.get_sid()}, "
            f"transport={self.sio.transport()}")

    def disconnect(self):
        self.sio.disconnect()

    def mark(self):
        with self.cond:
            return len(self.events)

    def send(self, text, client_offset, what):
        try:
            ack = self.sio.call("chat message", (text, client_offset), timeout=STEP_TIMEOUT_S)
        except socketio.exceptions.TimeoutError:
            raise CheckFailed(what, f"no acknowledgement within {STEP_TIMEOUT_S:g} s") from None
        # call() returns None for an ack of [] (or [null]); anything else is an error
        check(ack is None, what, f"server acknowledged with {ack!r}")

    def wait_for(self, texts, since=0):
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.cond:
            while True:
                got = {e[0] for e in self.events[since:]}
                missing = [t for t in texts if t not in got]
                if not missing:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CheckFailed(f"{self.name} receive",
                                      f"timed out after {STEP_TIMEOUT_S:g} s; missing {missing!r}")
                self.cond.wait(remaining)

    def since(self, index):
        with self.cond:
            return list(self.events[index:])

    def ids_of(self, texts):
        with self.cond:
            first = {}
            for text, msg_id, _ in self.events:
                first.setdefault(text, msg_id)
        return [first.get(t) for t in texts]

    def check_shapes(self):
        with self.cond:
            events = list(self.events)
        for text, msg_id, args in events:
            check(isinstance(text, str) and type(msg_id) is int and msg_id > 0, f"{self.name} event shape",
                  f"expected ('chat message', text, positive int id, offset), got {args!r}")
            # the 4th argument (recovery offset) is omitted by servers without recovery
            check(len(args) == 2 or (len(args) == 3 and args[2] == str(msg_id)),
                  f"{self.name} event offset argument",
                  f"expected a 4th argument {str(msg_id)!r} or none, got {args!r}")

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - tearing down, nothing to do
            pass


def verify_exactly(name, events, texts, ids, last_id_before, token):
    older = [(e[1], e[0]) for e in events if type(e[1]) is int and e[1] <= last_id_before]
    check(not older, f"{name} nothing older",
          lambda: f"received {len(older)} message(s) with id <= {last_id_before}: {older[:5]!r}")
    got_ids = [e[1] for e in events]
    check(len(got_ids) == len(set(got_ids)), f"{name} no duplicates", lambda: f"ids received: {got_ids}")
    check(all(b > a for a, b in zip(got_ids, got_ids[1:])), f"{name} id order",
          lambda: f"ids not increasing: {got_ids}")
    own = [e for e in events if e[0] in texts]
    check([e[0] for e in own] == texts, f"{name} exactly the missed messages, in order",
          lambda: f"received {[(e[1], e[0]) for e in own]!r}, expected {texts!r}")
    check([e[1] for e in own] == ids, f"{name} ids of the missed messages",
          lambda: f"received ids {[e[1] for e in own]}, the sender saw {ids}")
    stray = [(e[1], e[0]) for e in events if e[0] not in texts and token in str(e[0])]
    check(not stray, f"{name} nothing unexpected", lambda: f"unexpected messages of this run: {stray!r}")
    foreign = [e for e in events if e[0] not in texts]
    if foreign:
        log(f"{name}: note: {len(foreign)} message(s) from other clients also arrived (tolerated)")


def run(url):
    global STEP
    token = secrets.token_hex(6)
    texts_a = [f"py replay {token} A{i}/2 {secrets.token_hex(3)}" for i in (1, 2)]
    texts_b = [f"py replay {token} B{i}/3 {secrets.token_hex(3)} é 😀" for i in (1, 2, 3)]
    dup_text = f"py replay {token} duplicate {secrets.token_hex(3)}"

    a = Peer("A", url)
    b = Peer("B", url)
    try:
        STEP = "connect"
        a.connect(0)
        b.connect(0)
        old_sid = a.sio.get_sid()

        STEP = "A sends 2 messages"
        for i, text in enumerate(texts_a, 1):
            a.send(text, f"{old_sid}-py-{token}-a{i}", f"ack of A's message {i}/2")
        a.wait_for(texts_a)
        b.wait_for(texts_a)
        time.sleep(0.1)  # straggling history, if any
        last_id = a.last_id
        ids_a = a.ids_of(texts_a)
        check(last_id >= ids_a[-1], "A tracks the last id", lambda: f"last id {last_id}, own ids {ids_a}")
        log(f"A: its messages have ids {ids_a}; last id {last_id}")

        STEP = "A disconnects"
        a.disconnect()
        check(not a.sio.connected, "A disconnects", "still connected")
        mark = a.mark()

        STEP = "B sends 3 messages while A is away"
        for i, text in enumerate(texts_b, 1):
            b.send(text, f"{b.sio.get_sid()}-py-{token}-b{i}", f"ack of B's message {i}/3")
        b.wait_for(texts_b)
        ids_b = b.ids_of(texts_b)
        log(f"B: 3 messages acknowledged, ids {ids_b}")

        STEP = "A reconnects"
        a.connect(last_id)
        check(a.sio.get_sid() != old_sid, "A gets a new sid", f"sid {old_sid} reused")
        a.wait_for(texts_b, since=mark)
        time.sleep(DUPLICATE_GRACE_S)
        verify_exactly("A", a.since(mark), texts_b, ids_b, last_id, token)
        log(f"A: received exactly the 3 missed messages {ids_b}")

        STEP = "same clientOffset twice"
        mark_a, mark_b = a.mark(), b.mark()
        dup_offset = f"py-{token}-dup"
        for i in (1, 2):
            a.send(dup_text, dup_offset, f"ack of duplicate send {i}/2")
            log(f"A: duplicate send {i}/2 acknowledged")
        a.wait_for([dup_text], since=mark_a)
        b.wait_for([dup_text], since=mark_b)
        time.sleep(DUPLICATE_GRACE_S)
        seen = {}
        for peer, m in ((a, mark_a), (b, mark_b)):
            got = [e[1] for e in peer.since(m) if e[0] == dup_text]
            check(len(got) == 1, f"{peer.name} sees the duplicate once",
                  f"broadcast {len(got)} times (ids {got})")
            seen[peer.name] = got[0]
        check(seen["A"] == seen["B"], "same id on A and B", f"{seen}")

        STEP = "verify"
        a.check_shapes()
        b.check_shapes()
        for p in (a, b):
            check(p.sio.connected, f"{p.name} still connected", "disconnected")
        return ids_b, seen["A"]
    finally:
        a.close()
        b.close()


def main(argv):
    if len(argv) != 2:
        print("usage: python replay.py URL", file=sys.stderr)
        return 1
    url = argv[1]
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        print(f"FAIL arguments: bad URL {url!r}", file=sys.stderr)
        return 1

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, on_overall_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        log(f"replay.py against {url}")
        ids_b, dup_id = run(url)
    except CheckFailed as e:
        print(f"FAIL replay.py at step \"{STEP}\": {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - report anything unexpected clearly
        print(f"FAIL replay.py at step \"{STEP}\": unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        watchdog.cancel()
    log(f"PASS replay.py: exact replay of ids {ids_b} after reconnecting; duplicate broadcast once as #{dup_id}")
    return 0


if __name__ == "__main__":
    try:
        EXIT_CODE = main(sys.argv)
    except BaseException as exc:  # noqa: BLE001 - e.g. KeyboardInterrupt
        print(f"FAIL replay.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        EXIT_CODE = 1
    hard_exit(EXIT_CODE)
