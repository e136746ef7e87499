"""``affair``: one command, a subcommand per stage. Each parses flags and calls one function.

Heavy modules are imported inside the subcommand that needs them, so
``affair check-config`` starts in a blink and never loads matplotlib.
"""

import argparse
import sys

from affair.errors import AffairError


def _common(parser):
    parser.add_argument(
        "--config", help="config file (default: config/affair.toml shipped with affair)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="affair",
        description="A Flexible Fabric and Application Information Recorder: "
        "round-robin time series for the machines and applications of a cluster.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    record = commands.add_parser(
        "record",
        help="receive samples and write them to RRDs",
        description="Receive samples from collectors over ZeroMQ, journal and acknowledge them, "
        "and write them to one RRD per host and dataset. SIGTERM flushes and exits.",
    )
    _common(record)
    record.add_argument("--listen", help="ZeroMQ endpoint to bind, e.g. tcp://*:5678")
    record.add_argument("--data-dir", help="where RRDs and the journal live")
    record.set_defaults(handler=cmd_record)

    check = commands.add_parser(
        "check-config",
        help="validate the config file and print 'ok' or the first error",
        description="Load and validate the config; print 'ok' or one line naming the file, "
        "key and what was expected (exit 2).",
    )
    _common(check)
    check.set_defaults(handler=cmd_check_config)

    demo = commands.add_parser(
        "demo",
        help="run a recorder, simulated nodes and this machine's collector",
        description="Start a recorder, K simulated nodes with a day of backfilled history and "
        "this machine's real collector, all on loopback; run for --seconds or until Ctrl-C.",
    )
    _common(demo)
    demo.add_argument(
        "--workdir", default="demo-data", help="where the demo keeps its data (default ./demo-data)"
    )
    demo.add_argument(
        "--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)"
    )
    demo.add_argument("--nodes", type=int, default=20, help="simulated nodes (default 20)")
    demo.add_argument(
        "--backfill", default="1d", help="history to backfill for simulated nodes (default 1d)"
    )
    demo.set_defaults(handler=cmd_demo)

    plot = commands.add_parser(
        "plot",
        help="draw the graphs whose data moved (made for cron)",
        description="Draw per-node, aggregate and overlay graphs as PNGs, only those whose "
        "data moved by a row of their archive since they were drawn (all with --all). "
        "Prints one summary line; exits 1 if a graph failed, 2 on bad input.",
    )
    _common(plot)
    plot.add_argument("--data-dir", help="where the RRDs are (default: [recorder] data_dir)")
    plot.add_argument("--out", help="where the PNGs go (default: [plot] out_dir)")
    plot.add_argument("--all", action="store_true", help="redraw every graph, due or not")
    plot.add_argument(
        "--shard",
        default="0/1",
        metavar="i/N",
        help="draw only shard i of N (0-based), so N machines split the graphs (default 0/1)",
    )
    plot.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="processes drawing at once (default: [plot] workers)",
    )
    plot.set_defaults(handler=cmd_plot)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from affair.daemon import setup_logging

    setup_logging(args.log_level)
    try:
        return args.handler(args) or 0
    except AffairError as error:
        print(f"affair {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _load(args):
    from affair.config import load_config

    return load_config(args.config)


def cmd_check_config(args):
    _load(args)
    print("ok")


def cmd_record(args):
    from affair.daemon import stop_on_signals
    from affair.recorder import Recorder

    config = _load(args).with_overrides(listen=args.listen, data_dir=args.data_dir)
    stop = stop_on_signals()
    try:
        Recorder(config).run(stop)
    except RuntimeError as error:  # e.g. the data dir is locked by another recorder
        print(f"affair record: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_plot(args):
    from affair.errors import PlotError
    from affair.plot.plan import parse_shard
    from affair.plot.run import run_plot

    config = _load(args)
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        raise PlotError(f"--shard: {error}") from None
    if args.workers is not None and args.workers < 1:
        raise PlotError(f"--workers must be 1 or more, got {args.workers}")
    summary = run_plot(
        config,
        data_dir=args.data_dir,
        out_dir=args.out,
        all_graphs=args.all,
        shard=shard,
        workers=args.workers,
    )
    print(f"affair plot: {summary.line()}", flush=True)
    for reason in summary.errors:
        print(f"affair plot: failed: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_demo(args):
    from affair.archive import parse_duration
    from affair.demo import run_demo

    if args.nodes < 0:
        raise SystemExit("affair demo: --nodes must be 0 or more")
    try:
        backfill = parse_duration(args.backfill)
    except ValueError as error:
        raise SystemExit(f"affair demo: --backfill: {error}") from None
    return run_demo(args.config, args.workdir, args.seconds, args.nodes, backfill)


if __name__ == "__main__":
    sys.exit(main())
