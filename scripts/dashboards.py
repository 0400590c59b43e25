"""A wall of dashboards for the analytics benchmark: CLIENTS clients, each GET /metrics once a second.

Each client keeps one HTTP/1.1 keep-alive connection, as a browser tab polling the dashboard
does, and the clients are spread evenly over the interval, so the service sees a steady
CLIENTS requests a second rather than CLIENTS at once. A tick that finds the previous request
still running is skipped (a dashboard does not queue polls). A client whose connection fails
(the service not serving yet, or gone) reconnects on its next tick; only answered requests
count. Runs until SIGTERM or SIGINT (or --seconds), then prints one line over the span from
the first answer to the end:

    <requests> <requests/s> <p50 ms> <p99 ms> <failed ticks>

    dashboards.py URL [--clients 50] [--interval 1.0] [--seconds N]

Standard library only (asyncio), so any python3 runs it; scripts/analytics-wait.py uses its
MetricsConnection.
"""
import argparse
import asyncio
import signal
import time
from urllib.parse import urlsplit


class MetricsConnection:
    """One keep-alive HTTP/1.1 connection that GETs a path and returns the body."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                        "Accept: application/json\r\n\r\n").encode()
        self.reader = self.writer = None

    async def get(self):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(self.request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await self.reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            self.close()
            raise ConnectionError("the connection failed mid-request")
        if status != 200:
            raise ConnectionError(f"HTTP {status}")
        return body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float)
    return parser.parse_args()


async def dashboard(url, offset, interval, stop, latencies, answered_at, failures):
    connection = MetricsConnection(url)
    tick = time.monotonic() + offset
    while not stop.is_set():
        delay = tick - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except asyncio.TimeoutError:
                pass
        sent = time.monotonic()
        try:
            await connection.get()
            latencies.append(time.monotonic() - sent)
            answered_at.append(time.monotonic())
        except (OSError, ConnectionError):
            connection.close()
            failures[0] += 1
        # The next tick on this client's schedule that has not passed yet.
        tick += interval * max(1, int((time.monotonic() - tick) // interval) + 1)
    connection.close()


def percentile(values, share):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main():
    args = arguments()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    if args.seconds:
        loop.call_later(args.seconds, stop.set)
    latencies, answered_at, failures = [], [], [0]
    await asyncio.gather(*(dashboard(args.url, args.interval * n / args.clients, args.interval, stop,
                                     latencies, answered_at, failures) for n in range(args.clients)))
    span = time.monotonic() - answered_at[0] if answered_at else 0.0
    rate = len(latencies) / span if span > 0 else 0.0
    print(len(latencies), round(rate, 1), round(1000 * percentile(latencies, 0.5), 2),
          round(1000 * percentile(latencies, 0.99), 2), failures[0])


if __name__ == "__main__":
    asyncio.run(main())
