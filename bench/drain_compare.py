#!/usr/bin/env python3
"""Drains the same backlog with sked nodes and with bare clients running sked's claim statements.

usage: python3 bench/drain_compare.py [--sked BIN] [--client BIN] [--n N] [--rounds R] VARIANT...

VARIANT is one of
  sked:NODES            NODES sked nodes drain it, as bench/run.py's throughput scenario does
  client:sked*K         K sked-claim-client processes at once (bench/claim_client.cc), each with
                        sked's own claim statements (kClaimLockSql, kClaimWriteAlikeSql)
  client:lean*K         the same with the least a claim could ask (ids only, outcome in the SQL)
Each drain gets a fresh schema with N no-op tasks enqueued through sked's API (POST
/v1/tasks:batch, as bench/run.py does) and analysed, in a throwaway PostgreSQL. The variants take
turns, in an order rotated every round, because this machine's speed moves by a third within
minutes. For each drain it prints jobs/s and the whole machine's CPU per job (/proc/stat), and the
median of each variant at the end. A sked node's figure against the clients' is what the node
adds to its own SQL (bench/README.md, ninth pass).
"""
import argparse
import os
import re
import statistics
import sys

import run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sked", default=run.SKED_BINARY)
    ap.add_argument("--client", default=run.CLAIM_CLIENT)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()
    run.SKED_BINARY = os.path.abspath(args.sked)
    for v in args.variants:
        if not re.fullmatch(r"sked:\d+|client:(sked|lean)(\*\d+)?", v):
            sys.exit(f"drain_compare: unknown variant {v!r} (sked:NODES, client:sked*K, "
                     "client:lean*K)")
    pg = run.Postgres()
    results = {v: [] for v in args.variants}
    try:
        k = 0
        for r in range(args.rounds):
            shift = r % len(args.variants)
            for v in args.variants[shift:] + args.variants[:shift]:
                schema = f"compare_{k}"
                k += 1
                kind, _, what = v.partition(":")
                if kind == "sked":
                    res = run.sked_throughput(pg, args.n, int(what), schema)
                else:
                    statements, _, count = what.partition("*")
                    res = run.claim_client_throughput(pg, args.client, args.n, statements,
                                                      int(count or 1), schema)
                if not res["ran_once"]:
                    sys.exit(f"drain_compare: {v} did not run every job once")
                results[v].append(res)
                print(f"{v:16s} {res['jobs_per_s']:9.0f} jobs/s  "
                      f"{res['machine_cpu_us_per_job']:5.1f} us of the machine per job",
                      flush=True)
    finally:
        pg.stop()
    print("medians:")
    for v, rs in results.items():
        print(f"{v:16s} {statistics.median(x['jobs_per_s'] for x in rs):9.0f} jobs/s  "
              f"{statistics.median(x['machine_cpu_us_per_job'] for x in rs):5.1f} us per job")


if __name__ == "__main__":
    main()
