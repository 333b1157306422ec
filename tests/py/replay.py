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

import secrets
import time

from e2e_common import Peer, check, log, run_main, set_step

DUPLICATE_GRACE_S = 0.5


def check_shapes(peer):
    for text, msg_id, args in peer.since(0):
        check(isinstance(text, str) and type(msg_id) is int and msg_id > 0, f"{peer.name} event shape",
              f"expected ('chat message', text, positive int id, offset), got {args!r}")
        # the 4th argument (recovery offset) is omitted by servers without recovery
        check(len(args) == 2 or (len(args) == 3 and args[2] == str(msg_id)),
              f"{peer.name} event offset argument",
              f"expected a 4th argument {str(msg_id)!r} or none, got {args!r}")


def verify_exactly(name, events, texts, ids, last_id_before, token):
    older = [(e.id, e.text) for e in events if type(e.id) is int and e.id <= last_id_before]
    check(not older, f"{name} nothing older",
          lambda: f"received {len(older)} message(s) with id <= {last_id_before}: {older[:5]!r}")
    got_ids = [e.id for e in events]
    check(len(got_ids) == len(set(got_ids)), f"{name} no duplicates", lambda: f"ids received: {got_ids}")
    check(all(b > a for a, b in zip(got_ids, got_ids[1:])), f"{name} id order",
          lambda: f"ids not increasing: {got_ids}")
    own = [e for e in events if e.text in texts]
    check([e.text for e in own] == texts, f"{name} exactly the missed messages, in order",
          lambda: f"received {[(e.id, e.text) for e in own]!r}, expected {texts!r}")
    check([e.id for e in own] == ids, f"{name} ids of the missed messages",
          lambda: f"received ids {[e.id for e in own]}, the sender saw {ids}")
    stray = [(e.id, e.text) for e in events if e.text not in texts and token in str(e.text)]
    check(not stray, f"{name} nothing unexpected", lambda: f"unexpected messages of this run: {stray!r}")
    foreign = [e for e in events if e.text not in texts]
    if foreign:
        log(f"{name}: note: {len(foreign)} message(s) from other clients also arrived (tolerated)")


def run(url):
    token = secrets.token_hex(6)
    texts_a = [f"py replay {token} A{i}/2 {secrets.token_hex(3)}" for i in (1, 2)]
    texts_b = [f"py replay {token} B{i}/3 {secrets.token_hex(3)} é 😀" for i in (1, 2, 3)]
    dup_text = f"py replay {token} duplicate {secrets.token_hex(3)}"

    a = Peer("A", url)
    b = Peer("B", url)
    try:
        set_step("connect")
        a.connect(0)
        b.connect(0)
        old_sid = a.sio.get_sid()

        set_step("A sends 2 messages")
        for i, text in enumerate(texts_a, 1):
            a.send(text, f"{old_sid}-py-{token}-a{i}", f"ack of A's message {i}/2")
        a.wait_for(texts_a)
        b.wait_for(texts_a)
        time.sleep(0.1)  # straggling history, if any
        last_id = a.last_id
        ids_a = a.ids_of(texts_a)
        check(last_id >= ids_a[-1], "A tracks the last id", lambda: f"last id {last_id}, own ids {ids_a}")
        log(f"A: its messages have ids {ids_a}; last id {last_id}")

        set_step("A disconnects")
        a.disconnect()
        check(not a.sio.connected, "A disconnects", "still connected")
        mark = a.mark()

        set_step("B sends 3 messages while A is away")
        for i, text in enumerate(texts_b, 1):
            b.send(text, f"{b.sio.get_sid()}-py-{token}-b{i}", f"ack of B's message {i}/3")
        b.wait_for(texts_b)
        ids_b = b.ids_of(texts_b)
        log(f"B: 3 messages acknowledged, ids {ids_b}")

        set_step("A reconnects")
        a.connect(last_id)
        check(a.sio.get_sid() != old_sid, "A gets a new sid", f"sid {old_sid} reused")
        a.wait_for(texts_b, since=mark)
        time.sleep(DUPLICATE_GRACE_S)
        verify_exactly("A", a.since(mark), texts_b, ids_b, last_id, token)
        log(f"A: received exactly the 3 missed messages {ids_b}")

        set_step("same clientOffset twice")
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
            got = [e.id for e in peer.since(m) if e.text == dup_text]
            check(len(got) == 1, f"{peer.name} sees the duplicate once",
                  f"broadcast {len(got)} times (ids {got})")
            seen[peer.name] = got[0]
        check(seen["A"] == seen["B"], "same id on A and B", f"{seen}")

        set_step("verify")
        check_shapes(a)
        check_shapes(b)
        for p in (a, b):
            check(p.sio.connected, f"{p.name} still connected", "disconnected")
        return ids_b, seen["A"]
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    run_main("replay.py", run,
             lambda r: f"exact replay of ids {r[0]} after reconnecting; duplicate broadcast once as #{r[1]}")
