#!/usr/bin/env python3
"""End-to-end check of the `chat message` round trip with python-socketio.

usage: python chat_roundtrip.py BASE_URL

Client A connects with the default transports (polling, then upgrade to
websocket), client B with websocket only, both with auth {'serverOffset': 0}.
A sends messages with an acknowledgement (``call``); both clients must receive
each one as ('chat message', text, id) with the same positive integer id.
Exits 0 on success, 1 with a message naming the failed check otherwise.
"""

import os
import secrets
import sys
import threading
import time
import urllib.parse
from importlib.metadata import version as dist_version

import socketio

OVERALL_TIMEOUT_S = float(os.environ.get("E2E_TIMEOUT_S", "20"))
STEP_TIMEOUT_S = 5.0

STARTED = time.monotonic()
STEP = "start"


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.2f}s] {msg}", flush=True)


class CheckFailed(Exception):
    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")


def check(cond, name, detail):
    if not cond:
        raise CheckFailed(name, detail)


def hard_exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never wait for client background threads that might be stuck
    os._exit(code)


def on_overall_timeout():
    print(f"FAIL chat_roundtrip.py: overall timeout after {OVERALL_TIMEOUT_S:g} s "
          f"(stuck at step: {STEP})", file=sys.stderr, flush=True)
    hard_exit(1)


class Peer:
    """One Socket.IO client plus everything it received."""

    def __init__(self, name):
        self.name = name
        # reconnection off: a broken connection must fail the check, not be hidden
        self.sio = socketio.Client(reconnection=False)
        self.events = []  # argument tuples of every 'chat message'
        self.cond = threading.Condition()
        self.disconnect_reason = None
        self.sio.on("chat message", self._on_chat_message)
        self.sio.on("disconnect", self._on_disconnect)

    def _on_chat_message(self, *args):
        # tolerate extra trailing arguments (connection state recovery offset)
        with self.cond:
            self.events.append(args)
            self.cond.notify_all()

    def _on_disconnect(self, *args):
        self.disconnect_reason = args[0] if args else "unknown"
        log(f"{self.name}: disconnected ({self.disconnect_reason})")

    def connect(self, url, transports):
        try:
            self.sio.connect(url, auth={"serverOffset": 0}, transports=transports,
                             wait_timeout=STEP_TIMEOUT_S)
        except socketio.exceptions.ConnectionError as e:
            raise CheckFailed(f"{self.name} connect", f"{type(e).__name__}: {e}") from None
        check(self.sio.connected, f"{self.name} connect", "client reports not connected")
        sid = self.sio.get_sid()
        check(isinstance(sid, str) and sid, f"{self.name} sid", f"no namespace sid ({sid!r})")
        log(f"{self.name}: connected, sid={sid}, transport={self.sio.transport()}")

    def wait_for(self, texts):
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.cond:
            while True:
                got = {a[0] for a in self.events if a and a[0] in texts}
                if got >= set(texts):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = [t for t in texts if t not in got]
                    raise CheckFailed(f"{self.name} receive",
                                      f"timed out after {STEP_TIMEOUT_S:g} s; missing {missing!r}")
                self.cond.wait(remaining)

    def ids_by_text(self, texts):
        """Checks event shape and order; returns {text: id} for this run's texts."""
        with self.cond:
            own = [a for a in self.events if a and a[0] in texts]
        result = {}
        order = []
        for args in own:
            check(len(args) >= 2, f"{self.name} event shape",
                  f"expected ('chat message', text, id), got args {args!r}")
            text, msg_id = args[0], args[1]
            # bool is an int subclass in Python: exclude it explicitly
            check(type(msg_id) is int and msg_id > 0, f"{self.name} event shape",
                  f"id must be a positive integer, got {msg_id!r} in {args!r}")
            if text in result:
                check(result[text] == msg_id, f"{self.name} duplicate",
                      f"{text!r} delivered twice with ids {result[text]} and {msg_id}")
                continue
            result[text] = msg_id
            order.append(msg_id)
        check(all(b > a for a, b in zip(order, order[1:])), f"{self.name} id order",
              f"ids not strictly increasing in receive order: {order}")
        return result

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - tearing down, nothing to do
            pass


def run(url):
    global STEP
    token = secrets.token_hex(6)
    texts = [
        f"py roundtrip {token} 1/2 plain",
        f"py roundtrip {token} 2/2 unicode é 日本 😀 and <b>\"quotes\"</b> & \\ \nnext line",
    ]

    a = Peer("A")
    b = Peer("B")
    peers = [a, b]
    try:
        STEP = "connect"
        a.connect(url, transports=None)  # default: polling, upgraded to websocket if offered
        b.connect(url, transports=["websocket"])
        check(b.sio.transport() == "websocket", "B transport",
              f"expected websocket, got {b.sio.transport()}")
        if a.sio.transport() != "websocket":
            log(f"A: note: still on {a.sio.transport()} (server did not offer/accept the upgrade)")

        STEP = "send"
        for i, text in enumerate(texts, 1):
            client_offset = f"{a.sio.get_sid()}-py-{token}-{i}"
            try:
                ack = a.sio.call("chat message", (text, client_offset), timeout=STEP_TIMEOUT_S)
            except socketio.exceptions.TimeoutError:
                raise CheckFailed(f"ack of message {i}",
                                  f"no acknowledgement within {STEP_TIMEOUT_S:g} s") from None
            # call() returns None for an ack of [] or [null]; anything else is an error
            check(ack is None, f"ack of message {i}", f"server acknowledged with an error: {ack!r}")
            log(f"A: message {i}/{len(texts)} acknowledged")

        STEP = "receive"
        a.wait_for(texts)
        b.wait_for(texts)
        time.sleep(0.2)  # catch late duplicates

        STEP = "verify"
        ids_a = a.ids_by_text(texts)
        ids_b = b.ids_by_text(texts)
        for text in texts:
            check(ids_a[text] == ids_b[text], "same id for A and B",
                  f"{text!r}: A saw id {ids_a[text]}, B saw id {ids_b[text]}")
        ids = [ids_a[t] for t in texts]
        check(all(y > x for x, y in zip(ids, ids[1:])), "ids follow send order",
              f"ids in send order: {ids}")
        for p in peers:
            check(p.sio.connected, f"{p.name} still connected",
                  f"disconnected ({p.disconnect_reason})")
        return ids
    finally:
        for p in peers:
            p.close()


def main(argv):
    global STEP
    if len(argv) != 2:
        print("usage: python chat_roundtrip.py BASE_URL", file=sys.stderr)
        return 1
    url = argv[1]
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        print(f"FAIL arguments: bad BASE_URL {url!r}", file=sys.stderr)
        return 1

    watchdog = threading.Timer(OVERALL_TIMEOUT_S, on_overall_timeout)
    watchdog.daemon = True
    watchdog.start()

    try:
        log(f"chat_roundtrip.py against {url} (python-socketio {dist_version('python-socketio')})")
        ids = run(url)
    except CheckFailed as e:
        print(f"FAIL chat_roundtrip.py at step \"{STEP}\": {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - report anything unexpected clearly
        print(f"FAIL chat_roundtrip.py at step \"{STEP}\": unexpected {type(e).__name__}: {e}",
              file=sys.stderr)
        return 1
    finally:
        watchdog.cancel()
    log(f"PASS chat_roundtrip.py: {len(ids)} messages round-tripped, ids {ids} (same on A and B)")
    return 0


if __name__ == "__main__":
    try:
        EXIT_CODE = main(sys.argv)
    except BaseException as exc:  # noqa: BLE001 - e.g. KeyboardInterrupt
        print(f"FAIL chat_roundtrip.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        EXIT_CODE = 1
    hard_exit(EXIT_CODE)
