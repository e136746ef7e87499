"""Benchmark: ``affair archive`` of a day of raw samples, written and verified.

The issue's case: 1,000 hosts x 10 variables every 10 s for one day (8.64 M
samples), the same journal as ``benchmarks/export.py`` (shared --workdir,
generated once). Each command runs as its own process, so its wall time
and peak memory (ru_maxrss) are its own. Measured in the same run:

* baseline: ``affair export`` of the whole day (the write alone);
* ``affair archive``: plan, count by SQL, write, read back and verify, catalog;
* ``affair archive verify``: the read-back alone, over the finished file.

Targets: archive and verify under 90 s and under 1 GB.

    .venv/bin/python benchmarks/archive.py                      # the full case
    .venv/bin/python benchmarks/archive.py --hosts 50 --hours 2  # a quick look
"""

import argparse
import os
import resource
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export import generate, run_measured  # noqa: E402 - the export benchmark's journal


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--variables", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--workdir", default="/tmp/affair-bench-export")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    (workdir / "data" / "_journal").mkdir(parents=True, exist_ok=True)
    archive = workdir / "archive"
    config = workdir / "archive.toml"
    config.write_text(f'[export]\ndirectory = "{archive}"\n')
    python = sys.executable

    samples = generate(workdir, args.hosts, args.variables, args.hours)
    journal_bytes = sum(p.stat().st_size for p in (workdir / "data" / "_journal").glob("*"))
    print(f"journal: {samples:,} samples, {journal_bytes / 1e6:.0f} MB")

    output = workdir / "baseline-export.root"
    command = [python, "-m", "affair", "export", "--config", str(config)]
    command += ["--data-dir", str(workdir / "data"), "--output", str(output)]
    export_seconds, export_cpu, export_rss, _ = run_measured(command)
    print(
        f"baseline, affair export of the day: {export_seconds:.1f} s ({export_cpu:.1f} s CPU), "
        f"peak {export_rss:.0f} MB, file {output.stat().st_size / 1e6:.0f} MB"
    )
    output.unlink()

    shutil.rmtree(archive, ignore_errors=True)
    base = [python, "-m", "affair", "archive", "--config", str(config)]
    base += ["--data-dir", str(workdir / "data")]
    seconds, cpu, rss, out = run_measured(base)
    files = sorted(archive.glob("*/*.root"))
    size = sum(p.stat().st_size for p in files)
    print(out.strip())
    print(
        f"affair archive (write + read back + verify): {seconds:.1f} s ({cpu:.1f} s CPU), "
        f"peak {rss:.0f} MB, {len(files)} file(s), {size / 1e6:.0f} MB"
    )
    verify_seconds, verify_cpu, verify_rss, out = run_measured([*base[:-2], "verify"])
    print(out.strip().splitlines()[-1])
    print(
        f"affair archive verify (read back alone): {verify_seconds:.1f} s "
        f"({verify_cpu:.1f} s CPU), peak {verify_rss:.0f} MB"
    )
    print()
    print(f"archive: {seconds:.1f} s (target < 90 s), peak {rss:.0f} MB (target < 1024 MB)")
    print(
        f"ratio to the export alone: {seconds / export_seconds:.2f}x time, "
        f"{rss / export_rss:.2f}x peak memory; verify alone {verify_seconds / export_seconds:.2f}x"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
