#!/usr/bin/env python3
"""Where a PostgreSQL backend's time went, from `perf script` output.

Reads the call stacks of `perf record --call-graph dwarf -p PID` (as text,
on stdin) and puts each sample into the first phase of PHASES whose
function appears anywhere in its stack, so nested work counts once, under
the outermost reason for it (the projections' trigger inserts rows too;
those samples are the trigger's). Prints a Markdown table, biggest first.

Usage: perf script -i perf.data | bench/pg_phases.py
"""
import re
import sys

# (phase, functions that mark it), in order of precedence.
PHASES = [
    ("the projections' trigger (typed tables)", ("AfterTriggerEndQuery",)),
    ("parsing JSON into jsonb", ("jsonb_recv",)),
    ("B-tree inserts (the idempotency key)", ("btinsert",)),
    ("a page for new rows (relation extension, first touch of buffers)",
     ("RelationGetBufferForTuple",)),
    ("heap inserts", ("heap_insert", "heap_multi_insert")),
    ("COPY's other per-row work (routing, slots, checks)", ("CopyFrom",)),
    ("commit (WAL flush)", ("CommitTransactionCommand",)),
]
OTHER = "other (protocol, parsing and planning statements)"


def frames(sample):
    """The function names of one sample's stack, leaf first."""
    for line in sample.splitlines()[1:]:
        parts = line.split(None, 1)
        if len(parts) == 2:
            yield re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0])


def main():
    counts = {name: 0 for name, _ in PHASES}
    counts[OTHER] = 0
    total = 0
    for sample in sys.stdin.read().split("\n\n"):
        if not sample.strip():
            continue
        stack = set(frames(sample.strip()))
        total += 1
        for name, marks in PHASES:
            if stack.intersection(marks):
                counts[name] += 1
                break
        else:
            counts[OTHER] += 1
    if total == 0:
        sys.exit("pg_phases: no samples in the input")
    print(f"| phase of the worker's PostgreSQL backend ({total} samples) | share |")
    print("|---|---:|")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {100 * n / total:.1f} % |")


if __name__ == "__main__":
    main()
