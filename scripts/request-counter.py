"""A counting TCP proxy in front of a Kafka broker: how many requests of each API pass, and their size.

    request-counter.py LISTEN_PORT BROKER_PORT REPORT_FILE

Listens on 127.0.0.1:LISTEN_PORT and relays every connection to 127.0.0.1:BROKER_PORT. In the
client-to-broker direction it reads Kafka's framing (a 4-byte size, then the request header,
whose first field is the 2-byte API key) to count requests and bytes per API; the replies are
relayed untouched. The broker must advertise LISTEN_PORT (broker.sh start --advertise-port),
or clients would leave the proxy after their first Metadata request. On SIGTERM or SIGINT it
writes one JSON object to REPORT_FILE, {"seconds": S, "apis": {NAME: {"requests": N,
"bytes": B}}, "connections": C}, and exits. Standard library only.

The one choice a reader may question: a proxy, not the broker's own metrics. Nisshi exports
request metrics only over OTLP, which this machine has no collector for; a proxy counts
exactly what the clients send, at the price of one more hop (it is used to compare storage
engines under the same load, not to measure latency).
"""
import asyncio
import json
import signal
import sys
import time

# The API keys our services and the peers use (Kafka protocol reference); others by number.
API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
             9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
             13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 18: "ApiVersions",
             19: "CreateTopics", 22: "InitProducerId", 32: "DescribeConfigs", 36: "SaslAuthenticate"}

requests, sizes = {}, {}
connections = 0


async def relay_requests(reader, writer):
    while True:
        head = await reader.readexactly(4)
        size = int.from_bytes(head, "big", signed=True)
        body = await reader.readexactly(size)
        api = API_NAMES.get(int.from_bytes(body[:2], "big", signed=True), str(int.from_bytes(body[:2], "big")))
        requests[api] = requests.get(api, 0) + 1
        sizes[api] = sizes.get(api, 0) + size + 4
        writer.write(head + body)
        await writer.drain()


async def relay_replies(reader, writer):
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()


async def serve(client_reader, client_writer, broker_port):
    global connections
    connections += 1
    try:
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", broker_port)
    except OSError:
        client_writer.close()
        return
    pumps = [asyncio.create_task(relay_requests(client_reader, broker_writer)),
             asyncio.create_task(relay_replies(broker_reader, client_writer))]
    await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    for pump in pumps:
        pump.cancel()
    for writer in (client_writer, broker_writer):
        writer.close()


async def main():
    listen_port, broker_port, report_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    server = await asyncio.start_server(lambda r, w: serve(r, w, broker_port), "127.0.0.1", listen_port)
    print(f"request-counter.py: relaying 127.0.0.1:{listen_port} -> 127.0.0.1:{broker_port}", file=sys.stderr)
    await stop.wait()
    server.close()
    report = {"seconds": round(time.monotonic() - started, 3), "connections": connections,
              "apis": {api: {"requests": requests[api], "bytes": sizes[api]} for api in sorted(requests)}}
    with open(report_file, "w", encoding="utf-8") as file:
        json.dump(report, file)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    asyncio.run(main())
