"""FIFO order of the flash sales of a running local stack, to check the model's order against.

For each sale (newest first, or the ids given): its lanes, the tickets' places in line and outcomes, and
- admissions after a later place of their lane: won tickets in the order they won (hold_expires_ms), counted
  when an earlier-won ticket of the same lane had a later place;
- buyers turned away behind a winner of their lane: sold-out tickets with an earlier place than some winner of
  their lane.
A ticket's lane and its place in the lane come from its position: position = (seq - 1) * lanes + lane + 1.

Usage: .local/venv/bin/python infra/flash-model/lane_order.py --state-dir <stack state dir> [--last 2] [sale_id ...]
"""

import argparse
import json
import os
from collections import defaultdict

import boto3


def scan(table, **kwargs):
    items, start = [], None
    while True:
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--table", default="commerce-local-FlashSalesTable")
    parser.add_argument("--last", type=int, default=2, help="how many of the newest sales")
    parser.add_argument("sales", nargs="*")
    args = parser.parse_args()
    with open(os.path.join(args.state_dir, "stack.json")) as f:
        stack = json.load(f)
    db = boto3.resource(
        "dynamodb",
        endpoint_url=stack["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = db.Table(args.table)
    metas = [i for i in scan(table) if i.get("sk") == "META" and str(i.get("pk", "")).startswith("SALE#")]
    metas.sort(key=lambda i: i.get("created_at", ""), reverse=True)
    wanted = args.sales or [m["sale_id"] for m in metas[: args.last]]
    tickets = [i for i in scan(table) if str(i.get("pk", "")).startswith("TICKET#")]
    for sale_id in wanted:
        meta = next(m for m in metas if m["sale_id"] == sale_id)
        shards = int(meta["shards"])
        lanes = int(meta.get("lanes") or 0) or shards
        mine = [t for t in tickets if t.get("sale_id") == sale_id]
        by_lane = defaultdict(list)
        for t in mine:
            pos = int(t["position"])
            by_lane[(pos - 1) % lanes].append(((pos - 1) // lanes + 1, t))
        inversions = passed_over = 0
        won = sold_out = 0
        for lane, entries in by_lane.items():
            winners = sorted((int(t["hold_expires_ms"]), seq) for seq, t in entries if t["status"] in ("won", "purchased"))
            won += len(winners)
            last = 0
            for _, seq in winners:
                if seq < last:
                    inversions += 1
                last = max(last, seq)
            best = max((seq for _, seq in winners), default=0)
            for seq, t in entries:
                if t["status"] == "sold_out":
                    sold_out += 1
                    passed_over += seq < best
        print(
            f"{sale_id}: {shards} shards, {lanes} lanes, {len(mine)} tickets, won {won}, sold out in line {sold_out}; "
            f"admissions after a later place of their lane {inversions}; "
            f"buyers turned away behind a winner of their lane {passed_over}"
        )


if __name__ == "__main__":
    main()
