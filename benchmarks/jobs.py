"""Jobs: sacct import, per-job metrics from the raw archive, and the jobs index.

    .venv/bin/python benchmarks/jobs.py                   # 100,000 lines, 64 nodes x 24 h, 10,000 jobs
    .venv/bin/python benchmarks/jobs.py --lines 10000 --nodes 8 --hours 2 --jobs 1000

Each figure is printed with a baseline measured in the same run:

* import: parsing and merging N sacct lines into the jobs table, against
  splitting the same lines on ``|`` (reading them at all);
* metrics: one job's figures from the raw archive at full resolution,
  against reading the same rows without decoding (``DayReader.chunks``);
  the peak of Python allocations (tracemalloc) for a job of half the nodes
  and of all of them says whether memory stays flat in the job's size;
* index: a site pass of the jobs pages with N finished jobs (pages kept,
  so this is the index), against listing the jobs from the table.
"""

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affair.config import parse_config  # noqa: E402
from affair.ingest.validate import Sample  # noqa: E402
from affair.outputs.jobs.metrics import compute_job_metrics  # noqa: E402
from affair.outputs.jobs.pages import JobPages  # noqa: E402
from affair.outputs.site import make_environment  # noqa: E402
from affair.storage.jobs import JobStore, host_mapper, jobs_path  # noqa: E402
from affair.storage.journal import Journal  # noqa: E402
from affair.storage.journal_reader import DayReader, day_spans  # noqa: E402
from affair.storage.sacct import JobRecord, parse_sacct  # noqa: E402

T0 = 1_800_000_000.0


def sacct_lines(count):
    lines = []
    for i in range(count):
        start = f"2026-12-01T{i % 24:02d}:00:00"
        end = "Unknown" if i % 10 == 0 else f"2026-12-01T{i % 24:02d}:30:00"
        state = "RUNNING" if i % 10 == 0 else ("CANCELLED by 5001" if i % 7 == 0 else "COMPLETED")
        jobid = f"{100000 + i // 4}_{i % 4}" if i % 3 == 0 else str(200000 + i)
        lines.append(
            f"{jobid}|{300000 + i}|hpc|compute|normal|acct{i % 50}|grp|5001|user{i % 200}|5001|"
            f"{start}|{start}|{start}|{end}|00:30:00|0:0|{state}|4|64|64|4000M|"
            f"billing=64,cpu=64,node=4|billing=64,cpu=64,node=4|1-00:00:00|"
            f"c[{i % 900:03d}-{i % 900 + 3:03d}]|job|{i}"
        )
    return lines


def bench_import(count, directory):
    lines = sacct_lines(count)
    started = time.perf_counter()
    for line in lines:
        line.split("|")
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    mapper = host_mapper(parse_config({}, "bench").jobs)
    with JobStore(directory / "import.sqlite", mapper) as store:
        counts = store.merge(parse_sacct(lines))
    took = time.perf_counter() - started
    print(
        f"import: {count:,} lines in {took:.2f} s ({count / took:,.0f} lines/s; "
        f"{counts.new:,} jobs); splitting them {baseline:.3f} s: {took / baseline:.0f}x"
    )


def archive(directory, nodes, hours):
    data = directory / "data"
    clock = [T0]
    journal = Journal(data / "_journal", clock=lambda: clock[0])
    hosts = [f"c{i:03d}" for i in range(nodes)]
    steps = int(hours * 360)
    started = time.perf_counter()
    for block in range(0, steps, 360):
        batch = []
        for step in range(block, min(steps, block + 360)):
            ts = T0 + 10 * step
            for index, host in enumerate(hosts):
                cpu = 90.0 if index % 4 else 2.0
                batch.append(
                    Sample(
                        0,
                        ts,
                        host,
                        "system",
                        "",
                        {
                            "cpu_user": cpu,
                            "cpu_system": 1.0,
                            "cpu_iowait": 0.5,
                            "load1": 1.0,
                            "load5": 1.0,
                            "load15": 1.0,
                            "mem_used": 8e9 + step,
                            "mem_free": 1e9,
                            "swap_used": 0.0,
                            "disk_read": 1e3 * step,
                            "disk_write": 2e3 * step,
                            "net_in": 1e4 * step,
                            "net_out": 1e4 * step,
                            "net_pkts_in": step,
                            "net_pkts_out": step,
                        },
                    )
                )
        clock[0] = T0 + 10 * block
        journal.append(batch)
    journal.close()
    for host in hosts:
        (data / host).mkdir()
    print(
        f"  (archive of {nodes} nodes x {hours} h: {nodes * steps:,} samples, "
        f"written in {time.perf_counter() - started:.0f} s)"
    )
    return data, hosts, steps


def bench_metrics(nodes, hours, directory):
    data, hosts, steps = archive(directory, nodes, hours)
    config = parse_config({"recorder": {"data_dir": str(data)}}, "bench")
    end = T0 + 10 * (steps - 1)
    with JobStore(jobs_path(data)) as store:
        store.merge(
            [
                JobRecord("1", start=T0, end=end, nodes=tuple(hosts)),
                JobRecord("2", start=T0, end=end, nodes=tuple(hosts[: max(1, nodes // 2)])),
            ]
        )
        big, small = store.job("1"), store.job("2")
    started = time.perf_counter()
    rows = 0
    for span in day_spans(data / "_journal", T0, end + 1):
        with DayReader(span.path) as reader:
            for chunk in reader.chunks(None, T0, end + 1):
                rows += len(chunk)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    summary = compute_job_metrics(big, config, now=end + 3600)
    took = time.perf_counter() - started
    peaks = {}
    for name, job in (("small", small), ("big", big)):
        tracemalloc.start()
        compute_job_metrics(job, config, now=end + 3600)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        f"metrics: a {nodes}-node {hours} h job ({rows:,} samples) in {took:.2f} s; "
        f"reading the rows undecoded {baseline:.2f} s: {took / baseline:.1f}x; "
        f"cpu {summary['metrics']['cpu']['value']:.1f}%, flags {summary['flags']}"
    )
    print(
        f"  peak Python allocations: {peaks['small'] / 2**20:.1f} MiB for {len(small.hosts)} "
        f"nodes, {peaks['big'] / 2**20:.1f} MiB for {nodes}"
    )


def bench_index(count, directory):
    data = directory / "index-data"
    config = parse_config(
        {"recorder": {"data_dir": str(data)}, "jobs": {"index_jobs": count}}, "bench"
    )
    now = T0 + 86400
    with JobStore(jobs_path(data)) as store:
        store.merge(
            JobRecord(
                str(1000 + i),
                user=f"u{i % 300}",
                account=f"a{i % 40}",
                start=T0 + i,
                end=T0 + i + 600,
                nodes=(f"c{i % 500:03d}",),
                state="COMPLETED",
            )
            for i in range(count)
        )
        metrics = {
            "final": True,
            "flags": ["short"],
            "nodes": {},
            "metrics": {"cpu": {"value": 50.0}, "memory": {"value": 1e9}},
        }
        for i in range(count):
            store.set_metrics(str(1000 + i), metrics, True)
    out = directory / "site"
    environment = make_environment()
    common = {
        "site_title": "bench",
        "built": int(now),
        "built_text": "",
        "refresh": 30,
        "refresh_text": "30 s",
        "asset_version": "0",
    }

    def render(template, page):
        return environment.get_template(template).render({**common, **page})

    pages = JobPages(config, out, render)
    (out / "jobs").mkdir(parents=True)
    for job in range(count):  # pages of finished jobs are kept: only the index is built
        (out / "jobs" / f"{1000 + job}.final").write_text("")
        (out / "jobs" / f"{1000 + job}.html").write_text("")
    started = time.perf_counter()
    with JobStore(jobs_path(data)) as store:
        listed = len(list(store.jobs(count)))
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    summary = pages.write(now)
    took = time.perf_counter() - started
    print(
        f"index: {listed:,} jobs in {took:.2f} s ({summary.kept:,} pages kept); "
        f"listing them {baseline:.2f} s: {took / baseline:.1f}x"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        bench_import(args.lines, directory)
        bench_index(args.jobs, directory)
        bench_metrics(args.nodes, args.hours, directory)


if __name__ == "__main__":
    main()
