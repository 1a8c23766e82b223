#!/usr/bin/env python3
"""bench/py_worker.py - what a user would write instead of sluice's worker.

A short worker with Debian's python3-pika and python3-psycopg2, the way the
libraries' documentation suggests: consume the four source queues on one
channel, batch up to BATCH messages or 50 ms, insert them with
execute_values, idempotent by message id (ON CONFLICT DO NOTHING; a
message without one gets sha256 of source and body), commit, then ack the
batch (multiple=True). Exits once TOTAL messages are stored and prints
"events=N seconds=S rate=R" like the other baselines.

Usage: py_worker.py AMQP_URL PG_DSN TOTAL PREFETCH BATCH
"""
import hashlib
import sys
import time

import pika
import psycopg2
import psycopg2.extras

SOURCES = ("profiles", "clickstream", "orders", "sensors")


def main():
    # Timed from the start, connecting included, as sluice's drains are
    # timed from the worker's launch.
    started = time.monotonic()
    if len(sys.argv) != 6:
        sys.exit(__doc__.split("\n\n")[-1])
    url, dsn = sys.argv[1], sys.argv[2]
    total, prefetch, batch_size = (int(a) for a in sys.argv[3:6])

    db = psycopg2.connect(dsn)
    with db, db.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_py_events ("
                    " msg_id text PRIMARY KEY, source text NOT NULL,"
                    " payload jsonb NOT NULL, produced_at timestamptz,"
                    " stored_at timestamptz NOT NULL DEFAULT now())")
        cur.execute("TRUNCATE bench_py_events")

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    pending = []  # (delivery_tag, row)

    def on_message(source):
        def handle(_ch, method, props, body):
            msg_id = props.message_id or "sha256:" + hashlib.sha256(
                source.encode() + b"\0" + body).hexdigest()
            produced = None
            if props.headers and "x-produced-at-us" in props.headers:
                produced = props.headers["x-produced-at-us"] / 1e6
            pending.append((method.delivery_tag,
                            (msg_id, source, body.decode("utf-8"), produced)))
        return handle

    for s in SOURCES:
        ch.basic_consume("sluice.q." + s, on_message(s))
    print("py-worker: consuming", file=sys.stderr, flush=True)

    stored = 0
    last = time.monotonic()
    opened = None
    while stored < total:
        conn.process_data_events(time_limit=0.01)
        now = time.monotonic()
        if pending and opened is None:
            opened = now
        if pending and (len(pending) >= batch_size or now - opened >= 0.05):
            with db, db.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO bench_py_events (msg_id, source, payload, produced_at)"
                    " VALUES %s ON CONFLICT (msg_id) DO NOTHING",
                    [row for _, row in pending],
                    template="(%s, %s, %s::jsonb, to_timestamp(%s))",
                    page_size=batch_size)
            ch.basic_ack(pending[-1][0], multiple=True)  # only after the commit
            stored += len(pending)
            pending.clear()
            opened = None
            last = now
        elif now - last > 30:
            sys.exit("py-worker: nothing delivered for 30 s after %d of %d" % (stored, total))
    secs = time.monotonic() - started
    conn.close()
    db.close()
    print("events=%d seconds=%.3f rate=%.0f" % (stored, secs, stored / secs))


if __name__ == "__main__":
    main()
