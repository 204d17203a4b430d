"""`restitution orders import` alone against the raw bulk insert of the same rows, measured
right after it, as `make bench` measures them (bench/run.py) but on a database of your choice.

    .venv/bin/python -m bench.import_only --orders 1000000 --postgres-database imp_helper \
        --workdir /tmp/imp --repeat 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import data, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--postgres-database", default="restitution_bench_import")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/restitution-import"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend")
    args = parser.parse_args()
    # Backend reads the database name from the module when it builds its URL and resets.
    run.POSTGRES_DATABASE = args.postgres_database
    args.workdir.mkdir(parents=True, exist_ok=True)
    orders_file = args.workdir / f"orders-{args.orders}.jsonl"
    if not orders_file.exists():
        run.log(f"writing {args.orders:,} orders to {orders_file}")
        data.write_jsonl(orders_file, args.orders)
    rows = run.raw_rows(orders_file)
    for name in args.backends.split(","):
        backend = run.Backend(name, args.workdir)
        for _ in range(args.repeat):
            backend.reset()
            imported = run.import_orders(backend, orders_file, args.orders)
            raw = run.raw_insert(backend, rows)
            run.log(
                f"{name}: import {imported:,.0f} orders/s, raw {raw:,.0f} rows/s, "
                f"ratio {imported / raw:.0%}"
            )


if __name__ == "__main__":
    main()
