"""Drives the live playground through analytics' HTTP API and times the ripple, for
scripts/bench-control.sh. Standard library only: it speaks HTTP, not Kafka.

    control-probe.py rate URL TARGET SECONDS
        POST producer-order RATE_PER_SEC=TARGET, then poll GET /metrics until
        pipeline.producer.actual_rate is within 20% of TARGET; print the elapsed seconds
    control-probe.py members URL COUNT PARTITIONS SECONDS
        POST inventory-consumer MEMBERS=COUNT, then poll until pipeline.inventory_group lists
        COUNT members, partitions 0..PARTITIONS-1 each owned by exactly one of them, and its
        state is Stable when it reports one; print the elapsed seconds
    control-probe.py wait-orders URL COUNT SECONDS
        poll GET /metrics until analytics has read COUNT orders (orders.total); exit 1 on time-out
    control-probe.py churn URL EVERY
        until killed, POST inventory-consumer MAX_RETRIES alternating 4 and 3 every EVERY s (no
        effect on outcomes at FAIL_RATE=0, but every write goes control topic -> inventory ->
        status topic -> analytics); print the writes made when stopped. A 400 before inventory
        has published its settings (analytics checks values against them) is tried again.

The clock starts just before the POST is sent, so the time includes the request itself; it
stops when the condition is first seen, provided it still holds 1.2 s later (two more refreshes
of analytics' view): a rate passing through the target on its way is not the new rate.
/metrics is polled every 50 ms in this one process, so the wait costs little CPU and the
figure's resolution is the view's own (analytics refreshes it twice a second).
"""
import json
import signal
import sys
import time
import urllib.error
import urllib.request

POLL = 0.05
# Longer than two of the view's refreshes (every 0.5 s).
CONFIRM = 1.2


def post(url, body):
    request = urllib.request.Request(url.rstrip("/") + "/control", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 200:
            raise SystemExit(f"control-probe.py: POST /control answered {response.status}")


def metrics(url):
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, ValueError, OSError):
        return {}


def pipeline(url):
    return metrics(url).get("pipeline") or {}


def timed(url, body, seconds, holds, describe):
    """The time at which `holds` first became true, counted only if it stays true for
    CONFIRM (a rate that dips through the target for one sample is not the new rate)."""
    started = time.monotonic()
    post(url, body)
    deadline = started + float(seconds)
    last, since = {}, None
    while time.monotonic() < deadline:
        last = pipeline(url)
        if not holds(last):
            since = None
        elif since is None:
            since = time.monotonic()
        elif time.monotonic() - since >= CONFIRM:
            print(round(since - started, 3))
            return
        time.sleep(POLL)
    raise SystemExit(f"control-probe.py: {describe} not seen within {seconds} s (last: {describe_last(last)})")


def describe_last(view):
    group = view.get("inventory_group", {})
    return json.dumps({"actual_rate": view.get("producer", {}).get("actual_rate"),
                       "state": group.get("state"),
                       "members": [m.get("partitions") for m in group.get("members", [])]})


def rate(url, target, seconds):
    target = float(target)

    def holds(view):
        actual = view.get("producer", {}).get("actual_rate")
        return actual is not None and abs(actual - target) <= 0.2 * target

    timed(url, {"producer-order": {"RATE_PER_SEC": target}}, seconds, holds,
          f"actual_rate within 20% of {target:g}")


def members(url, count, partitions, seconds):
    count, wanted = int(count), list(range(int(partitions)))

    def holds(view):
        group = view.get("inventory_group", {})
        listed = group.get("members", [])
        owned = sorted(p for m in listed for p in m.get("partitions", []))
        state = group.get("state") or ""
        return len(listed) == count and owned == wanted and state.lower() in ("", "stable")

    timed(url, {"inventory-consumer": {"MEMBERS": count}}, seconds, holds,
          f"{count} stable member(s) owning {len(wanted)} partitions once each")


def wait_orders(url, count, seconds):
    deadline = time.monotonic() + float(seconds)
    while (metrics(url).get("orders") or {}).get("total", 0) < int(count):
        if time.monotonic() > deadline:
            raise SystemExit(f"control-probe.py: analytics did not read {count} orders within {seconds} s")
        time.sleep(0.2)


def churn(url, every):
    writes = 0
    signal.signal(signal.SIGTERM, lambda *_: (print(writes), sys.exit(0)))
    while True:
        try:
            post(url, {"inventory-consumer": {"MAX_RETRIES": 4 if writes % 2 == 0 else 3}})
        except urllib.error.HTTPError as error:
            if error.code != 400:
                raise
            time.sleep(0.2)
            continue
        writes += 1
        time.sleep(float(every))


COMMANDS = {"rate": rate, "members": members, "wait-orders": wait_orders, "churn": churn}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        raise SystemExit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
