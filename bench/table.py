"""Turns bench/run.sh's JSON lines into the Markdown table of the README.

One row per figure, one column per server, then emberchat's advantage over each peer (how many
times better, whichever way "better" points for that figure) and whether issue 6's target holds.
"""

import json
import sys

PEERS = ["node", "socketioxide"]
TITLES = {"emberchat": "emberchat", "node": "Node tutorial", "socketioxide": "socketioxide"}


def load(path):
    results = {}
    for line in open(path):
        record = json.loads(line)
        key = record["scenario"]
        if key in ("replay", "page"):
            key = f"{key}-{record['rows']}"
        results.setdefault(record["server"], {})[key] = record
    return results


def figure(results, server, scenario, field, scale=1.0):
    try:
        value = results[server][scenario][field]
    except KeyError:
        return None
    if value is None or isinstance(value, bool):
        return value
    return value * scale


# (label, scenario, field, scale, unit format, higher is better, target check)
ROWS = [
    ("idle RSS (VmRSS)", "idle", "rss_kib", 1 / 1024, "{:.2f} MB", False,
     lambda v, r: v is not None and v <= 3.0, "<= 3 MB"),
    ("idle private memory (RssAnon)", "idle", "rss_anon_kib", 1 / 1024, "{:.2f} MB", False,
     lambda v, r: v is not None and v <= 0.4, "<= 0.4 MB"),
    ("threads when idle", "idle", "threads", 1, "{:.0f}", False, None, ""),
    ("RSS per idle WebSocket client (1000 connected)", "conns", "bytes_per_client", 1 / 1024,
     "{:.1f} KB", False, lambda v, r: v is not None and v <= 4.0, "<= 4 KB"),
    ("fan-out: delivered messages/s (100 receivers x 2000{rounds})", "fanout", "delivered_per_second",
     1, "{:,.0f}", True, lambda v, r: r.get("socketioxide", 0) >= 10, ">= 10x socketioxide"),
    ("fan-out: server CPU per delivered message", "fanout", "cpu_us_per_delivery", 1,
     "{:.3f} us", False, lambda v, r: v is not None and v <= 0.5, "<= 0.5 us"),
    ("fan-out: receivers that saw ids in order", "fanout", "receivers_in_order", 1,
     "{:.0f}/100", True, lambda v, r: v == 100, "100/100"),
    ("fan-out: messages delivered twice", "fanout", "duplicates", 1, "{:.0f}", False,
     lambda v, r: v == 0, "0"),
    ("durable ingest: acked messages/s (20000 pipelined)", "ingest", "acked_per_second", 1,
     "{:,.0f}", True, lambda v, r: len(r) == 2 and min(r.values()) >= 20, ">= 20x both"),
    ("durable ingest: messages delivered twice", "ingest", "duplicates", 1, "{:.0f}", False,
     lambda v, r: v == 0, "0"),
    ("replay 100k rows: messages/s{rounds}", "replay-100000", "messages_per_second", 1, "{:,.0f}", True,
     lambda v, r: r.get("socketioxide", 0) >= 1.5, ">= 1.5x socketioxide"),
    ("replay 1M rows: messages/s", "replay-1000000", "messages_per_second", 1, "{:,.0f}", True,
     None, ""),
    ("replay 100k rows: peak RSS growth{over}", "replay-100000", "peak_growth_kib", 1 / 1024,
     "{:.2f} MB", False, lambda v, r: v is not None and v <= 1.0, "<= 1 MB"),
    ("replay 1M rows: peak RSS growth", "replay-1000000", "peak_growth_kib", 1 / 1024,
     "{:.2f} MB", False, lambda v, r: v is not None and v <= 1.0, "<= 1 MB, flat"),
    ("burst 20,000 x 1 KB: the 7 fast readers and the sender had all (n/a: one was cut off)",
     "burst", "fast_seconds", 1,
     "{:.2f} s", False, None, ""),
    ("burst: the 2 slow readers (1 ms a message) had all (n/a: one was cut off)", "burst",
     "slow_seconds", 1,
     "{:.2f} s", False, None, ""),
    ("burst: readers and sender cut off: disconnected, or still waiting after 90 s (of 10)", "burst", "disconnected", 1, "{:.0f}", False,
     lambda v, r: v == 0, "0"),
    ("burst: messages delivered twice", "burst", "duplicates", 1, "{:.0f}", False,
     lambda v, r: v == 0, "0"),
    ("burst: every reader saw ids in order", "burst", "in_order", 1, "{}", True,
     lambda v, r: v is True, "yes"),
    ("burst: peak RSS growth (one reader never reads)", "burst", "peak_growth_kib", 1 / 1024,
     "{:.2f} MB", False, None, ""),
    ("page, 100k rows: newest message on screen (n/a: not within the cap)", "page-100000",
     "newest_ms", 1 / 1000, "{:.2f} s", False, None, ""),
    ("page, 1M rows: newest message on screen (n/a: not within the cap)", "page-1000000",
     "newest_ms", 1 / 1000, "{:.2f} s", False, lambda v, r: v is not None and v <= 1.0, "<= 1 s"),
    ("page, 100k rows: list items in the tab (n/a: too busy to count)", "page-100000", "dom_items", 1, "{:,.0f}", False,
     lambda v, r: v is not None and v <= 1000, "<= 1,000"),
    ("page, 1M rows: list items in the tab (n/a: too busy to count)", "page-1000000", "dom_items", 1, "{:,.0f}", False,
     lambda v, r: v is not None and v <= 1000, "<= 1,000"),
    ("page, 100k rows: DOM nodes in the tab", "page-100000", "dom_nodes", 1, "{:,.0f}", False,
     None, ""),
    ("page, 1M rows: DOM nodes in the tab", "page-1000000", "dom_nodes", 1, "{:,.0f}", False,
     None, ""),
    ("page, 100k rows: JS heap", "page-100000", "heap_mb", 1, "{:.1f} MB", False,
     lambda v, r: v is not None and v <= 20, "<= 20 MB"),
    ("page, 1M rows: JS heap", "page-1000000", "heap_mb", 1, "{:.1f} MB", False,
     lambda v, r: v is not None and v <= 20, "<= 20 MB, flat"),
    ("cluster, 3 servers on one Redis: delivered messages/s (99 receivers x 3000{rounds})",
     "cluster", "delivered_per_second", 1, "{:,.0f}", True, None, ""),
    ("cluster: the servers' CPU per delivered message", "cluster", "cpu_us_per_delivery", 1,
     "{:.3f} us", False, None, ""),
    ("cluster: Redis's CPU per delivered message", "cluster", "redis_cpu_us_per_delivery", 1,
     "{:.3f} us", False, None, ""),
    ("cluster: receivers that saw ids increasing", "cluster", "receivers_in_order", 1,
     "{:.0f}/99", True, lambda v, r: v == 99, "99/99"),
    ("cluster: receivers that saw the same order as the first", "cluster",
     "receivers_same_order", 1, "{:.0f}/99", True, lambda v, r: v == 99, "99/99"),
    ("cluster: messages delivered twice", "cluster", "duplicates", 1, "{:.0f}", False,
     lambda v, r: v == 0, "0"),
    ("cluster: acked messages/s (15000, one sender per server; Node acks before Redis has it)",
     "cluster", "ingest_acked_per_second", 1, "{:,.0f}", True, None, ""),
    ("cluster: the servers' CPU per acked message", "cluster", "ingest_cpu_us_per_message", 1,
     "{:.2f} us", False, None, ""),
]


def cell(value, fmt):
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.format(value)


def main(path):
    results = load(path)
    servers = [s for s in ["emberchat"] + PEERS if s in results]
    peers = [s for s in PEERS if s in results]
    header = ["figure"] + [TITLES[s] for s in servers]
    header += [f"vs {TITLES[p]}" for p in peers] + ["target", "met"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, scenario, field, scale, fmt, higher, check, target in ROWS:
        values = {s: figure(results, s, scenario, field, scale) for s in servers}
        # A partial run (make bench-cluster) leaves the other scenarios out.
        if all(scenario not in results.get(s, {}) for s in servers):
            continue
        rounds = figure(results, "emberchat", scenario, "rounds") or 1
        several = rounds > 1
        cells = [label.format(rounds=f", median of {rounds:.0f} rounds" if several else "",
                              over=f" over {rounds:.0f} rounds" if several else "")]
        cells += [cell(values[s], fmt) for s in servers]
        ratios = {}
        ours = values.get("emberchat")
        for p in peers:
            theirs = values[p]
            if ours is None or theirs is None or ours == 0 or theirs == 0 or isinstance(ours, bool):
                cells.append("")
                continue
            ratios[p] = ours / theirs if higher else theirs / ours
            cells.append(f"{ratios[p]:.1f}x")
        cells.append(target)
        cells.append("" if check is None else ("yes" if check(ours, ratios) else "**no**"))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
