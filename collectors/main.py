"""``affair-collector``: the per-node process that pushes samples to the recorder."""

import argparse
import json
import socket
import sys

from affair.collectors.collector import Collector
from affair.collectors.failover import Failover
from affair.collectors.keys import collector_keys
from affair.collectors.probes import make_probe
from affair.collectors.sender import Sender

from affair.config import load_config
from affair.daemon import setup_logging, stop_on_signals
from affair.errors import AffairError
from affair.names import is_valid


def build_parser():
    parser = argparse.ArgumentParser(
        prog="affair-collector",
        description="Sample this node every interval and push the samples to an affair recorder.",
    )
    parser.add_argument(
        "--config", help="config file (its [collector] section); default: the shipped one"
    )
    parser.add_argument("--recorder", help="recorder endpoint, e.g. tcp://station:5678")
    parser.add_argument(
        "--fallback",
        help="a recorder to send to while ours does not answer (overrides [collector] fallback)",
    )
    parser.add_argument("--host", help="host name to record under (default: this machine's)")
    parser.add_argument("--interval", type=int, help="seconds between samples (default 10)")
    parser.add_argument("--probes", help="comma-separated probe names (default: from config)")
    parser.add_argument(
        "--secret-key",
        help="this collector's CURVE NAME.key_secret (overrides [collector] curve_secret_key_file)",
    )
    parser.add_argument(
        "--recorder-key",
        help="the recorder's public CURVE key file (overrides curve_recorder_key_file)",
    )
    parser.add_argument(
        "--list-probes",
        action="store_true",
        help="print the probes that would run and their variables, then exit",
    )
    parser.add_argument("--count", type=int, help="stop after this many samples (for tests)")
    parser.add_argument("--stats-file", help="write final delivery statistics here as JSON on exit")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        full_config = load_config(args.config)
        curve = collector_keys(full_config, args.secret_key, args.recorder_key)
    except AffairError as error:
        print(f"affair-collector: {error}", file=sys.stderr)
        return 2
    config = full_config.collector
    host = args.host or config.host or socket.gethostname().split(".")[0]
    if not is_valid("host", host):
        print(f"affair-collector: --host {host!r} is not a valid host name", file=sys.stderr)
        return 2
    interval = args.interval or config.interval
    probe_names = args.probes.split(",") if args.probes else list(config.probes)
    try:
        probes = [make_probe(name, config) for name in probe_names]
    except ValueError as error:
        print(f"affair-collector: {error}", file=sys.stderr)
        return 2
    if args.list_probes:
        for probe in probes:
            print(f"{probe.name}: {', '.join(probe.variables)}")
        return 0
    sender = Sender(
        args.recorder or config.recorder,
        name=host,
        per_series_limit=max(1, config.buffer_seconds // interval),
        resend_timeout=config.resend_timeout,
        max_in_flight=config.max_in_flight,
        backoff_cap=config.backoff_cap,
        curve=curve,
    )
    fallback = args.fallback or config.fallback
    failover = None
    if fallback:
        home = args.recorder or config.recorder
        failover = Failover(
            sender, config.station, home, fallback, config.fallback_after, config.home_retry
        )
    stop = stop_on_signals("collector")
    collector = Collector(sender, probes, host, interval, failover=failover)
    stats = collector.run(stop, count=args.count)
    sender.close()
    if args.stats_file:
        with open(args.stats_file, "w") as handle:
            json.dump({**stats.__dict__, "buffered": sender.buffered}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
