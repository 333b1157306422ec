#!/usr/bin/env python3
"""End-to-end check of the `chat message` round trip with python-socketio.

usage: python chat_roundtrip.py BASE_URL

Client A connects with the default transports (polling, then upgrade to
websocket), client B with websocket only, both with auth {'serverOffset': 0}.
A sends messages with an acknowledgement (``call``); both clients must receive
each one as ('chat message', text, id) with the same positive integer id.
Exits 0 on success, 1 with a message naming the failed check otherwise.
env: E2E_TIMEOUT_MS or E2E_TIMEOUT_S (overall timeout, default 20 s).
"""

import secrets
import time

from e2e_common import Peer, check, log, run_main, set_step


def ids_by_text(peer, texts):
    """Checks event shape and order; returns {text: id} for this run's texts."""
    own = [e.args for e in peer.since(0) if e.text in texts]
    result = {}
    order = []
    for args in own:
        check(len(args) >= 2, f"{peer.name} event shape",
              f"expected ('chat message', text, id), got args {args!r}")
        text, msg_id = args[0], args[1]
        # bool is an int subclass in Python: exclude it explicitly
        check(type(msg_id) is int and msg_id > 0, f"{peer.name} event shape",
              f"id must be a positive integer, got {msg_id!r} in {args!r}")
        if text in result:
            check(result[text] == msg_id, f"{peer.name} duplicate",
                  f"{text!r} delivered twice with ids {result[text]} and {msg_id}")
            continue
        result[text] = msg_id
        order.append(msg_id)
    check(all(b > a for a, b in zip(order, order[1:])), f"{peer.name} id order",
          f"ids not strictly increasing in receive order: {order}")
    return result


def run(url):
    token = secrets.token_hex(6)
    texts = [
        f"py roundtrip {token} 1/2 plain",
        f"py roundtrip {token} 2/2 unicode é 日本 😀 and <b>\"quotes\"</b> & \\ \nnext line",
    ]

    a = Peer("A", url)
    b = Peer("B", url)
    peers = [a, b]
    try:
        set_step("connect")
        a.connect(transports=None)  # default: polling, upgraded to websocket if offered
        b.connect(transports=["websocket"])
        check(b.sio.transport() == "websocket", "B transport",
              f"expected websocket, got {b.sio.transport()}")
        if a.sio.transport() != "websocket":
            log(f"A: note: still on {a.sio.transport()} (server did not offer/accept the upgrade)")

        set_step("send")
        for i, text in enumerate(texts, 1):
            a.send(text, f"{a.sio.get_sid()}-py-{token}-{i}", f"ack of message {i}")
            log(f"A: message {i}/{len(texts)} acknowledged")

        set_step("receive")
        a.wait_for(texts)
        b.wait_for(texts)
        time.sleep(0.2)  # catch late duplicates

        set_step("verify")
        ids_a = ids_by_text(a, texts)
        ids_b = ids_by_text(b, texts)
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


if __name__ == "__main__":
    run_main("chat_roundtrip.py", run,
             lambda ids: f"{len(ids)} messages round-tripped, ids {ids} (same on A and B)")
