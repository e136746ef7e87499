"""Benchmark: ``affair export`` of a day of raw samples to ROOT.

The issue's case: 1,000 hosts x 10 variables every 10 s for one day
(8.64 M samples, 86.4 M values), journaled through ``Journal.append`` as the
recorder does, then exported raw. Every export runs as its own
``affair export`` process, so its wall time and peak memory (ru_maxrss) are
its own. Baselines measured in the same run, on the same values:

* uproot alone writing the same arrays from memory (float64 and float32,
  ZSTD level 1, 100 k entries per basket): the floor for the writing side;
* reading the day file alone (the SQLite rows, no decoding, no ROOT).

Peak memory is measured for a quarter, half and whole of the range, to show
it stays flat as the range grows. Targets: under 60 s, under 1 GB.

    .venv/bin/python benchmarks/export.py                      # the full case (slow to set up)
    .venv/bin/python benchmarks/export.py --hosts 50 --hours 2  # a quick look

The generated journal is kept in --workdir and reused when the parameters
match, since writing 8.64 M samples takes minutes.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.storage.journal import Journal  # noqa: E402

DAY = 1_700_006_400  # 2023-11-15 00:00 UTC
STEP = 10
Row = namedtuple("Row", "ts host dataset instance values")


def make_batch(step, names, host_names, rng):
    """One timestamp's samples: levels with two decimals, like most gauges, and counters."""
    ts = float(DAY + step * STEP)
    variables = len(names)
    levels = np.round(rng.random((len(host_names), variables)) * 100, 2)
    levels[:, variables // 2 :] = np.floor(levels[:, variables // 2 :] * 1e9 + step * 1e6)
    return [
        Row(ts, host, "system", "", dict(zip(names, row, strict=True)))
        for host, row in zip(host_names, levels.tolist(), strict=True)
    ]


def generate(workdir, hosts, variables, hours):
    """Journal the samples, as the recorder would (cached across runs); return their count."""
    marker = workdir / "parameters.json"
    wanted = {"hosts": hosts, "variables": variables, "hours": hours, "format": 2}
    journal_dir = workdir / "data" / "_journal"
    steps = hours * 3600 // STEP
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return steps * hosts
    marker.unlink(missing_ok=True)
    for path in journal_dir.glob("*"):
        path.unlink()
    names = [f"var{i:02d}" for i in range(variables)]
    host_names = [f"node{i:04d}" for i in range(hosts)]
    clock_now = [DAY]
    journal = Journal(journal_dir, clock=lambda: clock_now[0])
    rng = np.random.default_rng(1)
    for step in range(steps):
        batch = make_batch(step, names, host_names, rng)
        clock_now[0] = batch[0].ts + 2
        journal.append(batch)
        if step % 360 == 0:
            print(f"  journaled {(step + 1) * hosts:,} samples", file=sys.stderr, flush=True)
    journal.close()
    marker.write_text(json.dumps(wanted))
    return steps * hosts


def append_cost(workdir, hosts, variables, steps=30):
    """CPU seconds per sample of Journal.append (the recorder's path), in a scratch journal."""
    scratch = workdir / "scratch-journal"
    for path in scratch.glob("*"):
        path.unlink()
    names = [f"var{i:02d}" for i in range(variables)]
    host_names = [f"node{i:04d}" for i in range(hosts)]
    rng = np.random.default_rng(2)
    batches = [make_batch(3600 + step, names, host_names, rng) for step in range(steps)]
    journal = Journal(scratch, clock=lambda: DAY + 7200)
    started = time.process_time()
    for batch in batches:
        journal.append(batch)
    spent = time.process_time() - started
    journal.close()
    return spent / (steps * hosts)


def run_measured(command):
    """Run ``command``; return (wall seconds, CPU seconds, peak RSS in MB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    out = process.stdout.read().decode()
    err = process.stderr.read().decode()
    process.stdout.close()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:4]} failed:\n{err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


UPROOT_ALONE = textwrap.dedent(
    """
    import sys, time, numpy as np, uproot
    rows, variables, dtype, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rng = np.random.default_rng(1)
    chunk = 100_000
    block = {f"var{i:02d}": np.round(rng.random(chunk) * 100, 2).astype(dtype) for i in range(variables)}
    block["time"] = np.arange(chunk, dtype=np.float64)
    block["host"] = np.arange(chunk, dtype=np.int32) % 1000
    block["instance"] = np.zeros(chunk, np.int32)
    started = time.perf_counter()
    with uproot.recreate(path, compression=uproot.ZSTD(1)) as f:
        f.mktree("system", {name: array.dtype for name, array in block.items()})
        for start in range(0, rows, chunk):
            count = min(chunk, rows - start)
            f["system"].extend({name: array[:count] for name, array in block.items()})
    print(time.perf_counter() - started)
    """
)

READ_ALONE = textwrap.dedent(
    """
    import sys, time
    from affair.storage.journal_reader import DayReader, day_spans
    started = time.perf_counter()
    rows = 0
    for span in day_spans(sys.argv[1]):
        with DayReader(span.path) as reader:
            for chunk in reader.chunks():
                rows += len(chunk)
    print(time.perf_counter() - started, rows)
    """
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--variables", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--workdir", default="/tmp/affair-bench-export")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    (workdir / "data" / "_journal").mkdir(parents=True, exist_ok=True)
    (workdir / "config.toml").write_text("")
    python = sys.executable

    samples = generate(workdir, args.hosts, args.variables, args.hours)
    values = samples * args.variables
    journal_bytes = sum(p.stat().st_size for p in (workdir / "data" / "_journal").glob("*"))
    print(f"journal: {samples:,} samples ({values:,} values), {journal_bytes / 1e6:.0f} MB")
    per_sample = append_cost(workdir, min(args.hosts, 1000), args.variables)
    print(f"journal append (the recorder's path): {per_sample * 1e6:.1f} us CPU per sample")

    seconds, cpu, rss, out = run_measured(
        [python, "-c", READ_ALONE, str(workdir / "data" / "_journal")]
    )
    read_seconds = float(out.split()[0])
    print(
        f"baseline, SQLite rows read alone: {read_seconds:.1f} s for {int(out.split()[1]):,} rows "
        f"({rss:.0f} MB peak)"
    )
    floors = {}
    for dtype in ("float64", "float32"):
        path = workdir / f"uproot-{dtype}.root"
        _, _, rss, out = run_measured(
            [python, "-c", UPROOT_ALONE, str(samples), str(args.variables), dtype, str(path)]
        )
        floors[dtype] = float(out)
        print(
            f"baseline, uproot alone, {dtype}: {floors[dtype]:.1f} s, "
            f"{path.stat().st_size / 1e6:.0f} MB file, {rss:.0f} MB peak"
        )
        path.unlink()

    results = []
    for fraction in (0.25, 0.5, 1.0):
        end = DAY + int(args.hours * 3600 * fraction)
        output = workdir / f"export-{fraction}.root"
        command = [python, "-m", "affair", "export", "--config", str(workdir / "config.toml")]
        command += ["--data-dir", str(workdir / "data"), "--output", str(output)]
        command += ["--from", str(DAY), "--to", str(end)]
        seconds, cpu, rss, _ = run_measured(command)
        size = output.stat().st_size
        output.unlink()
        results.append((fraction, seconds, rss, size))
        print(
            f"affair export, {fraction:>4.0%} of the range: {seconds:5.1f} s "
            f"({cpu:5.1f} s CPU), peak {rss:4.0f} MB, file {size / 1e6:.0f} MB"
        )
    fraction, seconds, rss, size = results[-1]
    print()
    print(f"whole range: {seconds:.1f} s (target < 60 s), peak {rss:.0f} MB (target < 1024 MB)")
    print(
        f"ratio to uproot alone (float64): {seconds / floors['float64']:.1f}x; "
        f"to reading SQLite alone: {seconds / read_seconds:.2f}x"
    )
    print(
        f"peak memory, quarter -> whole range: {results[0][2]:.0f} -> {rss:.0f} MB "
        f"({rss / results[0][2]:.2f}x for 4x the data)"
    )
    print(
        f"throughput: {values / seconds / 1e6:.1f} M values/s; "
        f"{size / values:.2f} bytes per value in the file"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
