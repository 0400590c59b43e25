"""Small topic chores for the benchmark scripts, with confluent-kafka.

    topic-tool.py create BOOTSTRAP PARTITIONS TOPIC...     create topics (replication 1)
    topic-tool.py count BOOTSTRAP TOPIC                    print the records on TOPIC
    topic-tool.py wait-count BOOTSTRAP TOPIC COUNT SECONDS wait until TOPIC holds COUNT records;
                                                           print the elapsed seconds (exit 1 on time-out)
    topic-tool.py wait-span BOOTSTRAP TOPIC COUNT SECONDS SINCE
                                                           the same, then print two figures from the records'
                                                           timestamps: first record - SINCE (epoch seconds),
                                                           and last record - first record
    topic-tool.py wait-group BOOTSTRAP GROUP MEMBERS SECONDS
                                                           wait until GROUP is Stable with MEMBERS members
    topic-tool.py trim BOOTSTRAP KEEP SECONDS TOPIC...     every SECONDS, delete all but the last
                                                           KEEP records of each partition (until killed)

"Records on a topic" is the sum of its partitions' high watermarks: what was written, counted
by the broker, without reading it. wait-count polls that every 50 ms in one process, so a
script awaits the condition instead of starting Python ten times a second. wait-group asks
with kafka-python's describe_groups (DescribeGroups) (librdkafka's describe_consumer_groups may choose KIP-848's
ConsumerGroupDescribe, which Nisshi only stubs): a benchmark starts its load once the
consumer has its partitions, so the group join is not measured as latency. trim exists for the
soak: Nisshi's memory storage keeps every record (no retention), and a long run at 10k
orders/s would otherwise fill the machine's memory with the broker's data, not the services'.
"""
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def partitions_of(consumer, topic):
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error:
        return []
    return [TopicPartition(topic, p) for p in metadata.partitions]


def high_watermarks(consumer, topic):
    return {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in partitions_of(consumer, topic)}


def reader(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "topic-tool"})


def create(bootstrap, partitions, *topics):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, int(partitions), 1) for t in topics]).values():
        future.result()


def count(bootstrap, topic):
    consumer = reader(bootstrap)
    print(sum(high_watermarks(consumer, topic).values()))
    consumer.close()


def wait_count(bootstrap, topic, wanted, seconds):
    consumer = reader(bootstrap)
    started = time.monotonic()
    deadline = started + float(seconds)
    while sum(high_watermarks(consumer, topic).values()) < int(wanted):
        if time.monotonic() > deadline:
            consumer.close()
            raise SystemExit(f"topic-tool.py: {topic} did not reach {wanted} records within {seconds} s")
        time.sleep(0.05)
    print(round(time.monotonic() - started, 3))
    consumer.close()


def wait_span(bootstrap, topic, wanted, seconds, since):
    """A throughput figure without the start-up in it and without the polling's resolution:
    once TOPIC holds COUNT records, the timestamps (ms, set by the writer) of each partition's
    first and last record give when writing started and ended."""
    consumer = reader(bootstrap)
    deadline = time.monotonic() + float(seconds)
    while sum(high_watermarks(consumer, topic).values()) < int(wanted):
        if time.monotonic() > deadline:
            consumer.close()
            raise SystemExit(f"topic-tool.py: {topic} did not reach {wanted} records within {seconds} s")
        time.sleep(0.05)
    stamps = []
    for partition, high in high_watermarks(consumer, topic).items():
        for offset in {0, high - 1} if high > 0 else ():
            consumer.assign([TopicPartition(topic, partition, offset)])
            message = consumer.poll(10)
            if message is None or message.error():
                raise SystemExit(f"topic-tool.py: could not read {topic}/{partition} at {offset}")
            stamps.append(message.timestamp()[1] / 1000)
    consumer.close()
    print(round(min(stamps) - float(since), 3), round(max(stamps) - min(stamps), 3))


def wait_group(bootstrap, group, members, seconds):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="topic-tool")
    started = time.monotonic()
    deadline = started + float(seconds)
    state = "unknown"
    while time.monotonic() < deadline:
        description = admin.describe_groups([group])[group]
        state = description["group_state"]
        if state == "Stable" and len(description["members"]) >= int(members):
            print(round(time.monotonic() - started, 3))
            admin.close()
            return
        time.sleep(0.05)
    admin.close()
    raise SystemExit(f"topic-tool.py: group {group} not Stable with {members} members within {seconds} s (last: {state})")


def trim(bootstrap, keep, seconds, *topics):
    consumer, admin = reader(bootstrap), AdminClient({"bootstrap.servers": bootstrap})
    while True:
        cuts = []
        for topic in topics:
            for partition, high in high_watermarks(consumer, topic).items():
                if high > int(keep):
                    cuts.append(TopicPartition(topic, partition, high - int(keep)))
        if cuts:
            for future in admin.delete_records(cuts).values():
                try:
                    future.result()
                except Exception as error:  # a partition that failed is tried again next round
                    print(f"topic-tool.py: trim: {error}", file=sys.stderr)
        time.sleep(float(seconds))


COMMANDS = {"create": create, "count": count, "wait-count": wait_count, "wait-span": wait_span,
            "wait-group": wait_group, "trim": trim}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        raise SystemExit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
