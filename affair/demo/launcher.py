"""``affair demo``: the whole data path on one machine, on loopback.

Starts a recorder process (also taking Graphite plaintext), this machine's
real collector process, a simulated event builder that publishes its own
``daq`` dataset through :mod:`affair.collectors.client`, K simulated nodes (in this
process, through the same Sender a collector uses) and a simulated telescope
pipeline of N telescopes publishing its links (:mod:`affair.demo.pipeline`, in a
thread of this process; its expected links are added to the config the demo
writes into its workdir); backfills a day of
history for the simulated nodes so the archives are not empty, then starts
``affair schedule`` (plot and site, drawing the 1 h graphs of every host
ahead of time: ``--eager 1h``; red changes are appended to ``notifications.log``
in the workdir by a ``[[notify]]`` command) and ``affair serve`` for the pages on
http://127.0.0.1:8080 (or the next free port), which draws the other
per-node graphs when someone looks at them, and runs live until
--seconds pass or Ctrl-C. One simulated node goes quiet 30 s into the live run,
as a node whose collector died, so the pages show grey too. A stream of
simulated batch jobs (:mod:`affair.demo.jobs`) runs over the simulated nodes
and reaches the recorder as the Slurm hooks' job events, so ``jobs/`` has
running and finished jobs from the first site pass.
"""

import errno
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from affair.atomic import write_atomic
from affair.collectors.job_hook import send_job_event
from affair.collectors.sender import Sender
from affair.config import DEFAULT_CONFIG, load_config
from affair.daemon import stop_on_signals
from affair.demo.jobs import DemoJobs
from affair.demo.pipeline import run_pipeline, topology_section
from affair.demo.simulation import SimulatedNode, host_names
from affair.demo.victoria import forward_config, start_victoria
from affair.names import is_valid

log = logging.getLogger("affair.demo.launcher")

# One simulated node falls silent this long into the live run: it has live
# rows like the others, then turns grey on the pages as a dead node would.
QUIET_AFTER = 30
# Simulated batch jobs cover at most this much of the backfill (a job page each).
JOBS_BACKFILL = 6 * 3600


def free_tcp_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def local_host_name():
    name = socket.gethostname().split(".")[0]
    return name if is_valid("host", name) else "localhost"


def run_demo(
    config_path, workdir, seconds, nodes, backfill_seconds, port=8080, forward=False, telescopes=10
):
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    children = []
    config_path, victoria_url = _demo_config(config_path, workdir, telescopes, forward, children)
    config = load_config(config_path)
    data_dir = workdir / "data"
    site_dir = workdir / "site"
    graphs_dir = site_dir / "graphs"  # inside the served directory, so pages reach the PNGs
    site_dir.mkdir(exist_ok=True)
    endpoint = free_tcp_endpoint()
    graphite_port = int(free_tcp_endpoint().rsplit(":", 1)[1])
    step = config.recorder.step
    stop = stop_on_signals("demo")
    started = time.monotonic()
    pipeline_stop = threading.Event()
    pipeline = None
    try:
        for what, arguments, takes_config in recorder_and_sources(
            endpoint, graphite_port, data_dir, step
        ):
            children.append(_spawn(what, arguments, config_path if takes_config else None, workdir))
        if telescopes:
            pipeline = _start_pipeline(endpoint, telescopes, step, pipeline_stop)
        simulated = [SimulatedNode(name) for name in host_names(nodes)]
        now = time.time()
        jobs = DemoJobs(
            [node.name for node in simulated],
            now - min(backfill_seconds, JOBS_BACKFILL),
            now + (seconds or 86400) + 3600,
        )
        sender = Sender(
            endpoint, name="demo-simulator", per_series_limit=100_000, max_in_flight=2000
        )
        last_sent = None
        if simulated:
            last_sent = _backfill(sender, simulated, backfill_seconds, step, stop, jobs)
            _tell_jobs(endpoint, jobs.events_between(0, last_sent))
        children.append(
            _spawn(
                "scheduler",
                scheduler_arguments(data_dir, graphs_dir, site_dir),
                with_demo_notify(config_path, workdir),
                workdir,
            )
        )
        url, server = start_server(data_dir, graphs_dir, site_dir, port, config_path, workdir)
        children.append(server)
        quiet = simulated[-1] if len(simulated) >= 4 else None
        _announce(config, endpoint, graphite_port, data_dir, nodes, simulated, url, quiet)
        if victoria_url is not None:
            print(
                f"affair demo: every sample is forwarded to VictoriaMetrics at {victoria_url}; "
                f"e.g. curl '{victoria_url}/api/v1/query?query=affair_system_cpu_user'",
                flush=True,
            )
        _run_live(
            sender,
            simulated,
            step,
            stop,
            started,
            seconds,
            children,
            last_sent,
            quiet,
            jobs,
            endpoint,
        )
        sender.flush(5.0)
        sender.close()
    finally:
        pipeline_stop.set()
        if pipeline is not None:
            pipeline.join(timeout=30)
        _stop_children(children)
    return 0


def _demo_config(config_path, workdir, telescopes, forward, children):
    """The config file the demo's processes read, and VictoriaMetrics' URL (or None).

    The given config is checked first, before anything starts; the demo's
    copy adds the pipeline's expected links and, with ``forward``, a
    ``[[forward]]`` target on a VictoriaMetrics started here (appended to
    ``children``, so it is stopped with the rest).
    """
    load_config(config_path)
    config_path = with_pipeline_topology(config_path, workdir, telescopes)
    load_config(config_path)
    if not forward:
        return config_path, None
    victoria, victoria_url = start_victoria(workdir)
    children.append(victoria)
    try:
        config_path = forward_config(config_path, workdir, victoria_url)
        load_config(config_path)
    except BaseException:
        _stop_children(children)
        raise
    return config_path, victoria_url


def _start_pipeline(endpoint, telescopes, step, stop):
    """The simulated telescope pipeline's daemons, publishing their links until ``stop``."""
    pipeline = threading.Thread(
        target=run_pipeline,
        args=(endpoint, telescopes, step, stop),
        name="demo-pipeline",
        daemon=True,
    )
    pipeline.start()
    return pipeline


def with_pipeline_topology(config_path, workdir, telescopes):
    """The config the demo runs with: the given one, plus the pipeline's expected links.

    Written to ``<workdir>/affair-demo.toml`` as the given file's text with ``levels`` and
    ``expected`` under its ``[topology]`` (added when it has none); a config that already
    expects links, or a demo without telescopes, is used as it is.
    """
    source = Path(config_path) if config_path else DEFAULT_CONFIG
    if not telescopes or load_config(source).topology.expected:
        return config_path
    text = source.read_text()
    keys = topology_section(telescopes)
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip().startswith("[topology]"):
            lines.insert(index + 1, keys)
            break
    else:
        lines.append(f"\n[topology]\n{keys}")
    path = workdir / "affair-demo.toml"
    path.write_text("".join(lines))
    return str(path)


def recorder_and_sources(endpoint, graphite_port, data_dir, step):
    """The processes started first: ``[(what, python arguments, takes --config)]``."""
    host = local_host_name()
    return [
        (
            "recorder",
            ["-m", "affair", "record", "--listen", endpoint, "--data-dir", str(data_dir)]
            + ["--graphite", str(graphite_port)],
            True,
        ),
        (
            "collector",
            ["-m", "affair.collectors.main", "--recorder", endpoint]
            + ["--host", host, "--interval", str(step)],
            True,
        ),
        (  # an application recording itself through affair.collectors.client
            "event builder",
            ["-m", "affair.demo.eventbuilder", "--recorder", endpoint]
            + ["--host", host, "--interval", str(step)],
            False,
        ),
    ]


# What the demo's scheduler adds to the config: every red change (and its end)
# appended as a JSON line to notifications.log in the workdir, its cwd.
DEMO_NOTIFY = """
[[notify]]
name = "demo-log"
command = ["sh", "-c", "cat >> notifications.log"]
colours = ["red"]
repeat = "1h"
"""


def with_demo_notify(config_path, workdir):
    """A copy of the config in the workdir with the demo's ``[[notify]]`` target added."""
    source = Path(config_path) if config_path else DEFAULT_CONFIG
    copy = Path(workdir) / "affair-demo.toml"
    write_atomic(copy, source.read_text() + DEMO_NOTIFY)
    return copy


def scheduler_arguments(data_dir, graphs_dir, site_dir):
    """``affair schedule`` drawing into the served directory, started once the backfill is in."""
    arguments = ["-m", "affair", "schedule", "--data-dir", str(data_dir)]
    return arguments + ["--graphs", str(graphs_dir), "--out", str(site_dir), "--eager", "1h"]


def server_arguments(data_dir, graphs_dir, site_dir, port):
    """``affair serve`` of the site and graphs, on loopback."""
    arguments = ["-m", "affair", "serve", "--data-dir", str(data_dir), "--graphs", str(graphs_dir)]
    return arguments + ["--site", str(site_dir), "--listen", f"127.0.0.1:{port}"]


def _announce(config, endpoint, graphite_port, data_dir, nodes, simulated, url, quiet):
    """Tell the user where everything is, and which node will fall silent."""
    host = local_host_name()
    print(
        f"affair demo: recorder on {endpoint}; RRDs for {nodes} simulated nodes and "
        f"{host} under {data_dir}",
        flush=True,
    )
    print(
        f"  e.g. rrdtool fetch {data_dir}/{(simulated[0].name if simulated else host)}"
        "/system.rrd AVERAGE -s -1h",
        flush=True,
    )
    print(
        f"  the simulated event builders publish {host}/daq.eb01.rrd ...; "
        f"Graphite plaintext (collectd, telegraf) is taken on 127.0.0.1:{graphite_port}",
        flush=True,
    )
    print(f"affair demo: status pages on {url}", flush=True)
    if quiet is not None:
        print(
            f"  {quiet.name} stops sending in {QUIET_AFTER} s, like a node whose collector "
            f"died: it turns grey {config.status.stale_steps * config.recorder.step} s later",
            flush=True,
        )


def free_port(port, attempts=10):
    """``port`` on 127.0.0.1 if free, else the next free one of ``attempts``, else any free one."""
    candidates = [*range(port, port + attempts), 0] if port else [0]
    for candidate in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port to serve the site on")  # unreachable: port 0 always binds


def start_server(data_dir, graphs_dir, site_dir, port, config_path, workdir, timeout=60.0):
    """Start ``affair serve`` on a free port; ``(url, process)`` once it accepts connections."""
    chosen = free_port(port)
    process = _spawn(
        "server", server_arguments(data_dir, graphs_dir, site_dir, chosen), config_path, workdir
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"affair serve exited at start (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", chosen), timeout=1):
                return f"http://127.0.0.1:{chosen}/", process
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"affair serve did not start listening within {timeout:g} s")


def _spawn(what, arguments, config_path, workdir):
    command = [sys.executable, *arguments]
    if config_path:
        command += ["--config", str(config_path)]
    log.info("starting the %s: %s", what, " ".join(command))
    return subprocess.Popen(command, cwd=workdir)


def _backfill(sender, simulated, backfill_seconds, step, stop, jobs=None):
    """Send ``backfill_seconds`` of history for every simulated node, an hour at a time."""
    now = time.time()
    first = (int(now - backfill_seconds) // step + 1) * step
    last = int(now) // step * step
    log.info(
        "backfilling %d s of history for %d simulated nodes...", backfill_seconds, len(simulated)
    )
    chunk_start = first
    while chunk_start <= last and not stop.is_set():
        chunk_end = min(last, chunk_start + 3600)
        for ts in range(chunk_start, chunk_end + 1, step):
            for node in simulated:
                values = node.sample(ts)
                if jobs is not None:
                    values = jobs.adjust(node.name, ts, values)
                sender.submit(float(ts), node.name, "system", "", values)
        if not sender.flush(timeout=120):
            log.warning("backfill: %d samples still unacknowledged", sender.buffered)
        chunk_start = chunk_end + step
    log.info("backfill done: %d samples acknowledged", sender.stats.acked)
    return last


def _run_live(
    sender,
    simulated,
    step,
    stop,
    started,
    seconds,
    children,
    last_sent=None,
    quiet=None,
    jobs=None,
    endpoint=None,
):
    # Carry on from the last backfilled sample (catching up at once), so the backfill
    # leaves no gap in the archives; without a backfill, start at the next tick.
    next_tick = last_sent + step if last_sent is not None else (time.time() // step + 1) * step
    quiet_at = time.monotonic() + QUIET_AFTER
    while not stop.is_set():
        if quiet is not None and time.monotonic() >= quiet_at:
            simulated = [node for node in simulated if node is not quiet]
            quiet = None
        if seconds is not None and time.monotonic() - started >= seconds:
            break
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"a demo process exited unexpectedly (code {child.returncode})")
        if time.time() >= next_tick:
            for node in simulated:
                values = node.sample(next_tick)
                if jobs is not None:
                    values = jobs.adjust(node.name, next_tick, values)
                sender.submit(float(next_tick), node.name, "system", "", values)
            if jobs is not None:
                _tell_jobs(endpoint, jobs.events_between(next_tick - step, next_tick))
            next_tick += step
        sender.pump(0.2)


def _tell_jobs(endpoint, events):
    """Each simulated job's start and end, as the Slurm hooks send them (affair job start|end)."""
    for _when, job, action in events:
        acked, what = send_job_event(endpoint, job.event(action), timeout=10)
        if not acked:
            log.warning("demo job %s %s: %s", job.jobid, action, what)


def _stop_children(children):
    for child in reversed(children):  # the collector first, so its last samples reach the recorder
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
