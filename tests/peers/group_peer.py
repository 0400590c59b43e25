"""A real peer client joining a consumer group, for our interop tests.

Runs confluent-kafka (librdkafka) or kafka-python as one member of a group and reports on
stdout, one JSON object per line:
  {"assigned": [[topic, partition], ...]}   after every assignment (the full current set)
  {"revoked": [[topic, partition], ...]}    what each on_revoke listed (with cooperative-sticky,
                                             only the partitions that move)
  {"record": value, "partition": p, "offset": o}
  {"closed": true}                           after a clean close
It keeps consuming until its stdin closes, then commits and closes. It never decides what is
right: the Rust test compares what both members saw.
"""
import argparse
import json
import sys
import threading


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def watch_stdin(stop):
    sys.stdin.read()
    stop.set()


def run_confluent(args, stop):
    from confluent_kafka import Consumer

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 200,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": args.strategy,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    consumer = Consumer(config)
    owned = set()

    def on_assign(_consumer, partitions):
        owned.update((p.topic, p.partition) for p in partitions)
        emit({"assigned": sorted(owned)})

    def on_revoke(_consumer, partitions):
        for p in partitions:
            owned.discard((p.topic, p.partition))
        emit({"revoked": sorted((p.topic, p.partition) for p in partitions)})

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop.is_set():
        message = consumer.poll(0.1)
        if message is None or message.error():
            continue
        emit({"record": message.value().decode(), "partition": message.partition(), "offset": message.offset()})
    consumer.close()
    emit({"closed": True})


def run_kafka_python(args, stop):
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    kwargs = dict(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=200,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=500,
    )
    if args.instance_id:
        kwargs["group_instance_id"] = args.instance_id
    consumer = KafkaConsumer(**kwargs)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, assigned):
            emit({"assigned": sorted((p.topic, p.partition) for p in consumer.assignment())})

    consumer.subscribe([args.topic], listener=Listener())
    while not stop.is_set():
        batches = consumer.poll(timeout_ms=100)
        for records in batches.values():
            for message in records:
                emit({"record": message.value.decode(), "partition": message.partition, "offset": message.offset})
    consumer.close()
    emit({"closed": True})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--instance-id")
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--session-timeout-ms", type=int, default=10000)
    args = parser.parse_args()
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    if args.client == "confluent":
        run_confluent(args, stop)
    else:
        run_kafka_python(args, stop)


if __name__ == "__main__":
    main()
