#!/usr/bin/env python3
"""Unit test of bench/pg_phases.py on hand-made `perf script` samples."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def sample(*stack):
    """One sample as perf script prints it: a header line, then the stack, leaf first."""
    lines = ["postgres 1234 [000] 1.000000: 1001001 cpu-clock:ppp:"]
    lines += [f"\t    55d0c0ffee{i:02x} {fn}+0x1{i} (/usr/lib/postgresql/15/bin/postgres)"
              for i, fn in enumerate(stack)]
    return "\n".join(lines) + "\n"


def run(text):
    out = subprocess.run([sys.executable, os.path.join(HERE, "pg_phases.py")], input=text,
                         capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


def share(table, phase):
    for line in table.splitlines():
        if line.startswith("| " + phase):
            return line.rsplit("|", 2)[1].strip()
    raise AssertionError(f"no row for {phase!r} in:\n{table}")


def main():
    samples = [
        # The trigger's own inserts and index entries count as the trigger's.
        sample("_bt_doinsert", "btinsert", "heap_insert", "ExecInsert", "AfterTriggerEndQuery",
               "CopyFrom", "DoCopy", "PostgresMain"),
        sample("json_lex", "pg_parse_json", "jsonb_recv", "NextCopyFrom", "CopyFrom"),
        sample("_bt_compare", "btinsert", "ExecInsertIndexTuples", "CopyFrom"),
        sample("[unknown]", "mdextend", "RelationGetBufferForTuple", "heap_insert", "CopyFrom"),
        sample("epoll_wait", "secure_read", "PostgresMain"),
        # Addresses perf could not name are read past.
        sample("[unknown]", "[unknown]", "jsonb_recv", "CopyFrom"),
        sample("heap_fill_tuple", "heap_multi_insert", "CopyFrom"),
        sample("XLogFlush", "CommitTransactionCommand", "PostgresMain"),
    ]
    rc, table, err = run("\n".join(samples))
    assert rc == 0, err
    assert "(8 samples)" in table, table
    expect = {
        "the projections' trigger": "12.5 %",
        "parsing JSON into jsonb": "25.0 %",
        "B-tree inserts": "12.5 %",
        "a page for new rows": "12.5 %",
        "heap inserts": "12.5 %",
        "COPY's other per-row work": "0.0 %",
        "commit": "12.5 %",
        "other": "12.5 %",
    }
    for phase, want in expect.items():
        got = share(table, phase)
        assert got == want, f"{phase}: {got}, expected {want}\n{table}"
    # Biggest first.
    rows = [line for line in table.splitlines()[2:]]
    assert rows[0].startswith("| parsing JSON into jsonb"), table
    # No samples: an error, not an empty table.
    rc, _, err = run("")
    assert rc != 0 and "no samples" in err, (rc, err)
    print("pg_phases: ok")


if __name__ == "__main__":
    main()
