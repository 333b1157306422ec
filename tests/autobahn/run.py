#!/usr/bin/env python3
"""Runs Autobahn|Testsuite's fuzzingclient against the conformance example's /autobahn echo
and compares every case with tests/autobahn/expected.json (`make autobahn`, and sections 1-7
in `make test`).

usage: run.py WSTEST FIRST_SECTION LAST_SECTION [--write-expected]

The server must already listen on 127.0.0.1:3000. wstest exits 0 whatever happens (even
with no server), so the verdict comes from its report: every case of the chosen sections must
have run, and each must end as expected.json says. Sections 12 and 13 (permessage-deflate)
are never run: the gateway does not offer compression, as engine.io ships with it off.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "target", "autobahn")
AGENT = "emberchat"


def case_key(case):
    return tuple(int(part) for part in case.split("."))


def main():
    wstest, first, last = os.path.abspath(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    write = "--write-expected" in sys.argv[4:]
    os.makedirs(OUT, exist_ok=True)
    spec = {
        "outdir": os.path.join(OUT, "report"),
        "servers": [{"agent": AGENT, "url": "ws://127.0.0.1:3000/autobahn"}],
        "cases": [f"{section}.*" for section in range(first, last + 1)],
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    }
    spec_path = os.path.join(OUT, "fuzzingclient.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f, indent=2)
    index = os.path.join(OUT, "report", "index.json")
    if os.path.exists(index):
        os.remove(index)
    subprocess.run([wstest, "-m", "fuzzingclient", "-s", spec_path], cwd=OUT, check=True,
                   stdout=subprocess.DEVNULL)
    with open(index) as f:
        results = json.load(f).get(AGENT, {})
    got = {case: (r["behavior"], r["behaviorClose"]) for case, r in results.items()}
    expected_path = os.path.join(HERE, "expected.json")
    if write:
        with open(expected_path) if os.path.exists(expected_path) else open(os.devnull) as f:
            text = f.read()
        expected = json.loads(text) if text else {}
        expected.update({case: {"behavior": b, "behaviorClose": c} for case, (b, c) in got.items()})
        with open(expected_path, "w") as f:
            json.dump(dict(sorted(expected.items(), key=lambda kv: case_key(kv[0]))), f, indent=1)
            f.write("\n")
        print(f"wrote {len(got)} cases to {expected_path}")
        return 0
    with open(expected_path) as f:
        expected = json.load(f)
    wanted = {case for case in expected if first <= case_key(case)[0] <= last}
    problems = []
    missing = sorted(wanted - set(got), key=case_key)
    if missing:
        problems.append(f"{len(missing)} cases did not run (is the server up?): {missing[:10]}")
    for case in sorted(got, key=case_key):
        want = expected.get(case)
        have = {"behavior": got[case][0], "behaviorClose": got[case][1]}
        if want != have:
            problems.append(f"case {case}: {have}, expected {want}")
    summary = {}
    for behavior, _ in got.values():
        summary[behavior] = summary.get(behavior, 0) + 1
    sections = f"sections {first}-{last}" if first != last else f"section {first}"
    print(f"Autobahn|Testsuite {sections}: {len(got)} cases: "
          + ", ".join(f"{n} {b}" for b, n in sorted(summary.items())))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
