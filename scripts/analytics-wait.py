"""Waits until analytics-consumer has counted EVENTS events (orders + inventory events) in /metrics.

Polls GET /metrics every --every seconds (default 0.025) on one keep-alive connection, so the
benchmark's own watching costs the service a few dozen small requests a second and the machine
no process start per poll (curl and a JSON parser per poll took a noticeable share of two
cores). A service that is not serving yet is retried. Exits 0 once counted, 1 after SECONDS.

    analytics-wait.py URL EVENTS SECONDS [--every 0.025]

Standard library only.
"""
import argparse
import asyncio
import json
import sys
import time

from dashboards import MetricsConnection


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("events", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--every", type=float, default=0.025)
    return parser.parse_args()


async def main():
    args = arguments()
    connection = MetricsConnection(args.url)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            metrics = json.loads(await connection.get())
            if metrics["orders"]["total"] + metrics["inventory_events"]["total"] >= args.events:
                return 0
        except (OSError, ConnectionError, ValueError, KeyError):
            connection.close()
        await asyncio.sleep(args.every)
    print(f"analytics-wait.py: not {args.events} events counted within {args.seconds} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
