"""Shared helpers for the emberchat end-to-end client scripts in Python (chat_roundtrip.py,
replay.py): the counterpart of tests/js/e2e_common.mjs.

Every script takes the server URL as argv[1], logs a short trace, exits 0 on success or 1
with a message naming the failed check, has an overall timeout (env E2E_TIMEOUT_MS, or
E2E_TIMEOUT_S, overrides the default of 20 s) and closes its clients on the way out. A script
calls run_main(name, run, success) with run(url) doing the work (raising CheckFailed on a
failed check) and success(result) describing what passed.
"""

import os
import sys
import threading
import time
import urllib.parse
from collections import namedtuple
from importlib.metadata import version as dist_version

import socketio

STEP_TIMEOUT_S = 5.0
DEFAULT_TIMEOUT_S = 20.0

STARTED = time.monotonic()
_step = "start"


def set_step(step):
    """Names what the script is doing, for the failure message and the overall timeout."""
    global _step
    _step = step


def step():
    return _step


def overall_timeout_s():
    if os.environ.get("E2E_TIMEOUT_MS"):
        return float(os.environ["E2E_TIMEOUT_MS"]) / 1000
    return float(os.environ.get("E2E_TIMEOUT_S", DEFAULT_TIMEOUT_S))


def log(msg):
    print(f"[{time.monotonic() - STARTED:6.2f}s] {msg}", flush=True)


class CheckFailed(Exception):
    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")


def check(cond, name, detail):
    """Raises CheckFailed(name, detail) unless cond; detail may be a function, called then."""
    if not cond:
        raise CheckFailed(name, detail() if callable(detail) else detail)


def hard_exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never wait for client background threads that might be stuck
    os._exit(code)


# One 'chat message' as received: its text, its id (None when absent) and all its arguments.
Event = namedtuple("Event", "text id args")


class Peer:
    """One python-socketio client plus every ('chat message', text, id, offset) it received."""

    def __init__(self, name, url):
        self.name = name
        self.url = url
        # reconnection off: a broken connection must fail the check, not be hidden
        self.sio = socketio.Client(reconnection=False)
        self.events = []
        self.last_id = 0
        self.disconnect_reason = None
        self.cond = threading.Condition()
        self.sio.on("chat message", self._on_chat_message)
        self.sio.on("disconnect", self._on_disconnect)

    def _on_chat_message(self, *args):
        # extra trailing arguments (the connection state recovery offset) are kept in args
        with self.cond:
            text = args[0] if args else None
            msg_id = args[1] if len(args) > 1 else None
            self.events.append(Event(text, msg_id, args))
            if type(msg_id) is int and msg_id > self.last_id:
                self.last_id = msg_id
            self.cond.notify_all()

    def _on_disconnect(self, *args):
        self.disconnect_reason = args[0] if args else "no reason given"
        log(f"{self.name}: disconnected ({self.disconnect_reason})")

    def connect(self, server_offset=0, transports=None):
        """Connects with auth {'serverOffset': server_offset}; transports None is the default
        (polling, upgraded to websocket if offered)."""
        try:
            self.sio.connect(self.url, auth={"serverOffset": server_offset}, transports=transports,
                             wait_timeout=STEP_TIMEOUT_S)
        except socketio.exceptions.ConnectionError as e:
            raise CheckFailed(f"{self.name} connect", f"{type(e).__name__}: {e}") from None
        check(self.sio.connected, f"{self.name} connect", "client reports not connected")
        sid = self.sio.get_sid()
        check(isinstance(sid, str) and sid, f"{self.name} sid", f"no namespace sid ({sid!r})")
        log(f"{self.name}: connected with serverOffset {server_offset}, sid={sid}, "
            f"transport={self.sio.transport()}")

    def disconnect(self):
        self.sio.disconnect()

    def mark(self):
        """The number of events so far, to look at what comes after it."""
        with self.cond:
            return len(self.events)

    def since(self, index):
        with self.cond:
            return list(self.events[index:])

    def send(self, text, client_offset, what):
        """call('chat message', (text, client_offset)): checks the ack carries no error."""
        try:
            ack = self.sio.call("chat message", (text, client_offset), timeout=STEP_TIMEOUT_S)
        except socketio.exceptions.TimeoutError:
            raise CheckFailed(what, f"no acknowledgement within {STEP_TIMEOUT_S:g} s") from None
        # call() returns None for an ack of [] (or [null]); anything else is an error
        check(ack is None, what, f"server acknowledged with an error: {ack!r}")

    def wait_for(self, texts, since=0):
        """Waits until every text has arrived (among the events from index `since` on)."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        with self.cond:
            while True:
                got = {e.text for e in self.events[since:]}
                missing = [t for t in texts if t not in got]
                if not missing:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CheckFailed(f"{self.name} receive",
                                      f"timed out after {STEP_TIMEOUT_S:g} s; missing {missing!r}")
                self.cond.wait(remaining)

    def ids_of(self, texts):
        """The id each text first arrived with (None if it did not)."""
        with self.cond:
            first = {}
            for e in self.events:
                first.setdefault(e.text, e.id)
        return [first.get(t) for t in texts]

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001 - tearing down, nothing to do
            pass


def _on_overall_timeout(name, seconds):
    print(f"FAIL {name}: overall timeout after {seconds:g} s (stuck at step: {_step})",
          file=sys.stderr, flush=True)
    hard_exit(1)


def _main(name, run, success, argv):
    if len(argv) != 2:
        print(f"usage: python {name} URL", file=sys.stderr)
        return 1
    url = argv[1]
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        print(f"FAIL arguments: bad URL {url!r}", file=sys.stderr)
        return 1

    seconds = overall_timeout_s()
    watchdog = threading.Timer(seconds, _on_overall_timeout, (name, seconds))
    watchdog.daemon = True
    watchdog.start()
    try:
        log(f"{name} against {url} (python-socketio {dist_version('python-socketio')})")
        result = run(url)
    except CheckFailed as e:
        print(f"FAIL {name} at step \"{_step}\": {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - report anything unexpected clearly
        print(f"FAIL {name} at step \"{_step}\": unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        watchdog.cancel()
    log(f"PASS {name}: {success(result)}")
    return 0


def run_main(name, run, success):
    """Runs run(url) for the URL in sys.argv under the overall timeout, prints PASS with
    success(result) or FAIL with the failed check, and exits 0 or 1."""
    try:
        code = _main(name, run, success, sys.argv)
    except BaseException as exc:  # noqa: BLE001 - e.g. KeyboardInterrupt
        print(f"FAIL {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    hard_exit(code)
