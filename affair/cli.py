"""``affair``: one command, a subcommand per stage. Each parses flags and calls one function.

Heavy modules are imported inside the subcommand that needs them, so
``affair check-config`` starts in a blink and never loads matplotlib.
"""

import argparse
import sys

from affair.errors import AffairError


def build_parser():
    parser = argparse.ArgumentParser(
        prog="affair",
        description="A Flexible Fabric and Application Information Recorder: "
        "round-robin time series for the machines and applications of a cluster.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_command in SUBCOMMANDS:  # in the order `affair --help` lists them
        add_command(commands)
    return parser


HOSTS_HELP = "host globs, comma-separated, e.g. 'gdc*,ldc0?' or '*,!ldc05' (default: all)"


def host_globs_argument(text):
    """``--hosts 'gdc*, !gdc05'`` -> ``["gdc*", "!gdc05"]``; [] (all hosts) when not given."""
    return [glob.strip() for glob in (text or "").split(",") if glob.strip()]


def _common(parser):
    parser.add_argument(
        "--config", help="config file (default: config/affair.toml shipped with affair)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


def _site_dirs(parser):
    parser.add_argument("--data-dir", help="where the RRDs live (default: [recorder] data_dir)")
    parser.add_argument(
        "--graphs", help="where the plotter draws (default: [site] graphs_dir, else [plot] out_dir)"
    )
    parser.add_argument("--out", help="where the pages go (default: [site] out_dir)")


def _eager(parser):
    parser.add_argument(
        "--eager",
        metavar="WINDOWS",
        help="override [plot] eager: 'all', or comma-separated windows drawn for every host "
        "(e.g. 1h; other per-node graphs are left to `affair serve`)",
    )


def _with_eager(config, eager):
    """``config`` with ``[plot] eager`` replaced by the --eager flag, if given."""
    if eager is None:
        return config
    import dataclasses

    from affair.config.graphs import eager_windows

    value = eager if eager == "all" else [w.strip() for w in eager.split(",") if w.strip()]
    try:
        value = eager_windows(value)
    except ValueError:
        raise SystemExit(f"affair: --eager: 'all' or windows like 1h,6h, got {eager!r}") from None
    return dataclasses.replace(config, plot=dataclasses.replace(config.plot, eager=value))


def _add_record(commands):
    record = commands.add_parser(
        "record",
        help="receive samples and write them to RRDs",
        description="Receive samples from collectors over ZeroMQ, journal and acknowledge them, "
        "and write them to one RRD per host and dataset. SIGTERM flushes and exits.",
    )
    _common(record)
    record.add_argument("--listen", help="ZeroMQ endpoint to bind, e.g. tcp://*:5678")
    record.add_argument("--data-dir", help="where RRDs and the journal live")
    record.add_argument(
        "--graphite",
        metavar="[HOST:]PORT",
        help="also accept Graphite plaintext (collectd, telegraf, netdata) on this TCP port; "
        "a bare port listens on 127.0.0.1 only (default: [graphite] listen in the config)",
    )
    record.set_defaults(handler=cmd_record)


def _add_check_config(commands):
    check = commands.add_parser(
        "check-config",
        help="validate the config file and print 'ok' or the first error",
        description="Load and validate the config; print 'ok' or one line naming the file, "
        "key and what was expected (exit 2).",
    )
    _common(check)
    check.set_defaults(handler=cmd_check_config)


def _add_demo(commands):
    demo = commands.add_parser(
        "demo",
        help="run a recorder, simulated nodes, this machine's collector and the status pages",
        description="Start a recorder, K simulated nodes with a day of backfilled history and "
        "this machine's real collector, all on loopback, then the scheduler (plot and site) and "
        "`affair serve` for the pages on http://127.0.0.1:8080, drawing per-node graphs other "
        "than the 1 h ones when they are viewed; run for --seconds or until Ctrl-C.",
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
    demo.add_argument(
        "--port", type=int, default=8080, help="serve the pages here, or the next free port (8080)"
    )
    demo.add_argument(
        "--telescopes",
        type=int,
        default=10,
        help="telescopes of the simulated pipeline publishing its links (default 10; 0: none)",
    )
    demo.add_argument(
        "--forward",
        action="store_true",
        help="also start a local VictoriaMetrics and forward every sample to it ([[forward]])",
    )
    demo.set_defaults(handler=cmd_demo)


def _add_keys(commands):
    keys = commands.add_parser(
        "keys",
        help="generate CURVE key pairs for the recorder and collectors",
        description="Write NAME.key (public: copy it freely) and NAME.key_secret (secret: mode "
        "0600, keep it on its machine) for each NAME into --out. The recorder's config names its "
        "secret file and the collectors' public files (its allow-list); each collector's names "
        "its own secret file and the recorder's public file. Existing keys are never overwritten.",
    )
    keys.add_argument("--out", required=True, help="directory to write the key files into")
    keys.add_argument(
        "names",
        nargs="*",
        default=["recorder", "collector"],
        metavar="NAME",
        help="one key pair per name (default: recorder collector)",
    )
    keys.set_defaults(handler=cmd_keys, log_level="WARNING")


def _add_plot(commands):
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
    _eager(plot)
    plot.set_defaults(handler=cmd_plot)


def _add_status(commands):
    status = commands.add_parser(
        "status",
        help="print every host's status colour; exit 1 when anything is red",
        description="Read the newest rows of every host's RRDs, apply [status] rules and print "
        "one line per host (coloured on a terminal) and the counts. Exit 1 when any host is red, "
        "0 otherwise, 2 on a config error, so it can drive other tooling.",
    )
    _common(status)
    status.add_argument("--data-dir", help="where the RRDs live (default: [recorder] data_dir)")
    status.add_argument(
        "--problems", action="store_true", help="list only hosts that are not green"
    )
    status.add_argument(
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the status column (default: auto, when stdout is a terminal and NO_COLOR is unset)",
    )
    status.set_defaults(handler=cmd_status)


def _add_site(commands):
    site = commands.add_parser(
        "site",
        help="render the static status pages once",
        description="Render index.html, a page per host and per aggregate/overlay graph, and "
        "status.json from the RRDs and the plotter's PNGs; every file is replaced atomically.",
    )
    _common(site)
    _site_dirs(site)
    site.set_defaults(handler=cmd_site)


def _add_schedule(commands):
    schedule = commands.add_parser(
        "schedule",
        help="run plot and site on their [schedule] intervals until SIGTERM",
        description="Run the plotter and the site builder on the intervals of [schedule], "
        "each pass logged, no pass overlapping the next. SIGTERM or Ctrl-C lets running passes "
        "finish, then exits.",
    )
    _common(schedule)
    _site_dirs(schedule)
    schedule.add_argument("--seconds", type=float, help="stop after this many seconds")
    _eager(schedule)
    schedule.set_defaults(handler=cmd_schedule)


def _add_export(commands):
    export = commands.add_parser(
        "export",
        help="write samples to a ROOT file for offline analysis",
        description="Write the raw samples (or the RRDs' consolidated rows) to a "
        "self-describing ROOT file: a TTree per dataset with time, host and one branch per "
        "variable. Raw samples come from the journal or, once it has let them go, from the "
        "permanent archive ([export] directory), each sample once. Times: now, today, yesterday, -1h, Unix seconds or 2024-05-01T12:00 (UTC).",
    )
    _common(export)
    export.add_argument("--output", required=True, help="the ROOT file to write, e.g. day.root")
    export.add_argument("--from", dest="start", help="first time included (default: the oldest)")
    export.add_argument("--to", dest="end", help="end of the range, excluded (default: now)")
    export.add_argument("--hosts", help=HOSTS_HELP)
    export.add_argument("--datasets", nargs="+", default=[], help="datasets (default: all)")
    export.add_argument(
        "--resolution",
        default="raw",
        help="raw (every sample, the default) or a step of the archive ladder, e.g. 10s, 1min",
    )
    export.add_argument(
        "--job",
        metavar="ID",
        help="a batch job's nodes over its run (instead of --from/--to/--hosts), e.g. 1234_5",
    )
    export.add_argument("--data-dir", help="where RRDs and the journal live")
    export.set_defaults(handler=cmd_export)


def _add_archive(commands):
    archive = commands.add_parser(
        "archive",
        help="keep every sample for good: verified ROOT files, a file per UTC day",
        description="run (the default): write every completed UTC day not archived yet to "
        "<[export] directory>/YYYY/affair-YYYY-MM-DD.root (late samples to .1.root, .2.root...), "
        "read each file back and record it in the catalog; for cron, the scheduler does it "
        "hourly. list: the files, failures and free space. verify: read every file back again.",
    )
    _common(archive)
    archive.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=("run", "list", "verify"),
        help="run (the default), list or verify",
    )
    archive.add_argument("--data-dir", help="where the journal lives (default: [recorder])")
    archive.set_defaults(handler=cmd_archive)


def _add_query(commands):
    query = commands.add_parser(
        "query",
        help="run a read-only SQL query over the raw archive",
        description="Run one read-only SQL SELECT over the raw archive: a view per dataset "
        "(ts, host, instance, received, one column per variable), latest_<dataset> and "
        "latest (host, dataset, instance, ts, variable, value). QUERY is SQL or the name of a "
        "[queries.<name>] entry of the config. Writes and queries past the time limit are refused.",
    )
    _common(query)
    query.add_argument("sql", nargs="?", metavar="QUERY", help="SQL, or a named query")
    query.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    query.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="bind :NAME in the SQL"
    )
    query.add_argument("--from", dest="start", help="read only day files with samples after this")
    query.add_argument("--to", dest="end", help="read only day files with samples before this")
    query.add_argument("--timeout", help="time limit, e.g. 30s (default: [query] timeout)")
    query.add_argument("--hosts", help=f"{HOSTS_HELP}; every view holds only these hosts' rows")
    query.add_argument(
        "--list", action="store_true", help="list the named queries and the views with columns"
    )
    query.add_argument("--data-dir", help="where the journal lives")
    query.set_defaults(handler=cmd_query)


def _add_jobs(commands):
    jobs = commands.add_parser(
        "jobs",
        help="batch jobs (Slurm): import accounting, list them, show one with its metrics",
        description="The jobs table next to the raw archive: import Slurm accounting "
        "(sacct --parsable2, run with TZ=UTC), list recent jobs, show one job's metrics "
        "(CPU, memory high water, imbalance, idle nodes, network, disk, swap) and flags.",
    )
    actions = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser(
        "import",
        help="read sacct lines into the jobs table",
        description="Read `sacct --allusers --parsable2 --noheader --allocations --duplicates "
        "--format <the 26 fields in the README>` output (TZ=UTC), a header line with other "
        "fields, or -p output. A malformed line is reported with its number and skipped "
        "(exit 1); re-importing the same lines changes nothing.",
    )
    load.add_argument("file", metavar="FILE", help="the sacct output, or - for stdin")
    listing = actions.add_parser(
        "list",
        help="print the running jobs, then the recent ones",
        description="Print running jobs first, then finished ones (newest first), with "
        "their key metrics and flags, as the jobs index page shows them.",
    )
    listing.add_argument("--limit", type=int, default=50, help="jobs to print (default 50)")
    show = actions.add_parser(
        "show",
        help="print one job, its metrics with their reasons, and its flags",
        description="Print one job's accounting, its per-job metrics (provisional while it "
        "runs), the reason of each missing value, its flags and its nodes.",
    )
    show.add_argument("jobid", metavar="ID", help="a Slurm job id: 1234, 1234_5")
    for parser in (load, listing, show):
        _common(parser)
        parser.add_argument("--data-dir", help="where the journal lives")
    jobs.set_defaults(handler=cmd_jobs)


def _add_job(commands):
    job = commands.add_parser(
        "job",
        help="tell the recorder a batch job started or ended (Slurm prolog/epilog)",
        description="Read the job from the environment Slurm gives a prolog or epilog "
        "(SLURM_JOB_ID or SLURM_ARRAY_JOB_ID/SLURM_ARRAY_TASK_ID, SLURM_JOB_USER, "
        "SLURM_JOB_ACCOUNT, SLURM_JOB_NODELIST or SLURM_NODELIST, ...) and send it to the "
        "recorder ([collector] recorder, its CURVE keys) until it is acknowledged. Hooks get no "
        "PATH: call affair by its absolute path. Exits 0 even when unacknowledged (a failing "
        "hook drains the node) unless --strict.",
    )
    job.add_argument("action", choices=("start", "end"), help="start (prolog) or end (epilog)")
    _common(job)
    job.add_argument("--recorder", help="the recorder's endpoint (default: [collector] recorder)")
    job.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the ack (default 10)"
    )
    job.add_argument("--strict", action="store_true", help="exit 1 when not acknowledged")
    job.set_defaults(handler=cmd_job)


def _add_serve(commands):
    serve = commands.add_parser(
        "serve",
        help="serve the pages over HTTP, drawing per-node graphs when they are requested",
        description="Serve the site (pages, graphs, status.json) over HTTP and draw a per-node "
        "graph when it is requested and missing or older than its archive's newest row, caching "
        "it under the plotter's file name. Read-only: only files under the site and graphs "
        "directories, only graphs of existing hosts, datasets and windows; anything else is 404. "
        "Renders run in a bounded pool; when it is full a request gets the old PNG, else 503. "
        "A per-node graph's ?from=<s>&to=<s> draws a custom range (the pages' zoom) and "
        "?scale=2 twice the pixels (HiDPI screens), on request only.",
    )
    _common(serve)
    serve.add_argument("--data-dir", help="where the RRDs live (default: [recorder] data_dir)")
    serve.add_argument(
        "--graphs", help="where graphs are cached (default: [site] graphs_dir, else [plot] out_dir)"
    )
    serve.add_argument("--site", help="the pages to serve (default: [site] out_dir)")
    serve.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8080, loopback only; port 0: any free one)",
    )
    serve.add_argument(
        "--workers", type=int, default=2, metavar="K", help="processes drawing graphs (default 2)"
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=16,
        metavar="N",
        help="graphs waiting or drawing at most; beyond it: the old PNG or 503 (default 16)",
    )
    serve.add_argument(
        "--threads", type=int, default=8, help="requests answered at once (default 8)"
    )
    serve.add_argument(
        "--range-cache",
        type=int,
        default=256,
        metavar="N",
        help="graphs of custom ranges (zooms) kept on disk, the least recently viewed "
        "removed first (default 256)",
    )
    serve.set_defaults(handler=cmd_serve)


def _add_check(commands):
    check = commands.add_parser(
        "check",
        help="run the [[criteria]] (SQL over the raw archive) and print what fails",
        description="Run every [[criteria]] query of the config over the raw archive's views "
        "(read-only, with the [query] time limit) and print each criterion, whether it passes, "
        "and the rows that violate it. A query that fails at run time is reported and the "
        "others still run. Exit 1 when a red criterion has violations or cannot run, 0 "
        "otherwise, 2 on a config error.",
    )
    _common(check)
    check.add_argument("--data-dir", help="where the journal lives (default: [recorder] data_dir)")
    check.set_defaults(handler=cmd_check)


SUBCOMMANDS = (
    _add_record,
    _add_check_config,
    _add_demo,
    _add_keys,
    _add_plot,
    _add_status,
    _add_site,
    _add_schedule,
    _add_export,
    _add_query,
    _add_jobs,
    _add_job,
    _add_check,
    _add_archive,
    _add_serve,
)


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
    from affair.ingest.auth import recorder_keys
    from affair.ingest.recorder import Recorder

    config = _load(args).with_overrides(listen=args.listen, data_dir=args.data_dir)
    if args.graphite:
        config = _with_graphite(config, args.graphite)
    server_key, allowed_keys = recorder_keys(config)
    stop = stop_on_signals("recorder")
    Recorder(config, server_key=server_key, allowed_keys=allowed_keys).run(stop)
    return 0


def cmd_keys(args):
    from affair.ingest.auth import generate_keys

    try:
        written = generate_keys(args.out, args.names)
    except (OSError, ValueError) as error:
        print(f"affair keys: {error}", file=sys.stderr)
        return 2
    for public, secret in written:
        print(f"{public}\n{secret}")
    return 0


def _with_graphite(config, listen):
    import dataclasses

    from affair.config.graphite import parse_listen

    try:
        address = parse_listen(listen)
    except ValueError as error:
        raise SystemExit(f"affair record: --graphite: {error}") from None
    return dataclasses.replace(
        config, graphite=dataclasses.replace(config.graphite, listen=address)
    )


def cmd_plot(args):
    # Imported here, not at the top, for start-up cost alone (no import circle): the plot
    # runner brings numpy and librrd, which `affair --help` and the other commands never need.
    from affair.errors import PlotError
    from affair.outputs.plot.plan import parse_shard
    from affair.outputs.plot.run import run_plot

    config = _with_eager(_load(args), args.eager)
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
    from affair.demo.launcher import run_demo
    from affair.times import parse_duration

    if args.nodes < 0:
        raise SystemExit("affair demo: --nodes must be 0 or more")
    try:
        backfill = parse_duration(args.backfill)
    except ValueError as error:
        raise SystemExit(f"affair demo: --backfill: {error}") from None
    if args.telescopes < 0:
        raise SystemExit("affair demo: --telescopes must be 0 or more")
    return run_demo(
        args.config,
        args.workdir,
        args.seconds,
        args.nodes,
        backfill,
        args.port,
        forward=args.forward,
        telescopes=args.telescopes,
    )


def cmd_status(args):
    import os

    from affair.outputs.status import status_report

    colour = args.colour == "always" or (
        args.colour == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    lines, code = status_report(_load(args), args.data_dir, colour, args.problems)
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `affair status | head`: the reader left; the exit code still counts
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def cmd_site(args):
    from affair.outputs.site import build_site

    summary = build_site(_load(args), args.data_dir, args.graphs, args.out)
    print(f"affair site: {summary.describe()}")


def cmd_schedule(args):
    from affair.daemon import stop_on_signals
    from affair.outputs.schedule import schedule_forever

    config = _with_eager(_load(args), args.eager)
    stop = stop_on_signals("scheduler")
    schedule_forever(config, args.data_dir, args.graphs, args.out, args.seconds, stop)


def cmd_serve(args):
    from affair.daemon import stop_on_signals
    from affair.errors import ServeError
    from affair.outputs.serve import run_serve

    for flag, value in (
        ("--workers", args.workers),
        ("--queue", args.queue),
        ("--threads", args.threads),
        ("--range-cache", args.range_cache),
    ):
        if value < 1:
            raise ServeError(f"{flag} must be 1 or more, got {value}")
    config = _load(args)
    stop = stop_on_signals("server")
    run_serve(
        config,
        data_dir=args.data_dir,
        graphs_dir=args.graphs,
        site_dir=args.site,
        listen=args.listen,
        workers=args.workers,
        queue_limit=args.queue,
        threads=args.threads,
        stop=stop,
        ready=lambda url: print(f"affair serve: serving on {url}", flush=True),
        range_cache=args.range_cache,
    )


def cmd_export(args):
    import time

    from affair.outputs.archive_read import export_everywhere
    from affair.outputs.export import export_root
    from affair.times import parse_duration, parse_time

    config = _load(args).with_overrides(data_dir=args.data_dir)
    now = time.time()
    try:
        start = parse_time(args.start, now) if args.start else None
        end = parse_time(args.end, now) if args.end else None
        resolution = "raw" if args.resolution == "raw" else parse_duration(args.resolution)
    except ValueError as error:
        raise SystemExit(f"affair export: {error}") from None
    hosts = host_globs_argument(args.hosts)
    if args.job:
        from affair.outputs.jobs.commands import job_range

        if args.start or args.end or args.hosts:
            raise SystemExit("affair export: --job sets the hosts and the range itself")
        hosts, start, end = job_range(config, args.job, now)
    if resolution == "raw":  # from the journal or the permanent archive, wherever it is
        summary = export_everywhere(config, args.output, start, end, hosts, args.datasets, now=now)
    else:
        summary = export_root(
            config, args.output, start, end, hosts, args.datasets, resolution, now=now
        )
    print(summary.describe())


def cmd_check(args):
    from affair.outputs.criteria import report, run_criteria

    config = _load(args)
    lines, code = report(run_criteria(config, args.data_dir))
    print("\n".join(lines), flush=True)
    return code


def cmd_archive(args):
    from affair.outputs.archive import list_archive, run_archive_politely, verify_archive

    config = _load(args).with_overrides(data_dir=args.data_dir)
    if args.action == "list":
        print("\n".join(list_archive(config)))
        return 0
    if args.action == "verify":
        lines, code = verify_archive(config)
        print("\n".join(lines))
        return code
    summary = run_archive_politely(config)
    print(f"affair archive: {summary.describe()}")
    return 1 if summary.failed else 0


def cmd_query(args):
    import os

    from affair.outputs.query import main as query_main

    config = _load(args).with_overrides(data_dir=args.data_dir)
    args.hosts = host_globs_argument(args.hosts)
    try:
        return query_main(config, args)
    except BrokenPipeError:  # `affair query ... | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_jobs(args):
    from affair.outputs.jobs import commands

    config = _load(args).with_overrides(data_dir=args.data_dir)
    if args.action == "import":
        return commands.cmd_import(config, args.file, sys.stdout, sys.stderr)
    if args.action == "list":
        return commands.cmd_list(config, sys.stdout, max(1, args.limit))
    return commands.cmd_show(config, args.jobid, sys.stdout)


def cmd_job(args):
    import os
    import time

    from affair.collectors.job_hook import job_event, send_job_event
    from affair.collectors.keys import collector_keys
    from affair.storage.sacct import check_job_id

    config = _load(args)
    event = job_event(args.action, os.environ, time.time())
    try:
        check_job_id(str(event["jobid"]))
    except ValueError as error:
        print(f"affair job {args.action}: {error} (from SLURM_JOB_ID)", file=sys.stderr)
        return 2
    acked, what = send_job_event(
        args.recorder or config.collector.recorder,
        event,
        args.timeout,
        collector_keys(config),
    )
    print(f"affair job {args.action}: {what}", file=sys.stderr)
    return 1 if args.strict and not acked else 0


if __name__ == "__main__":
    sys.exit(main())
