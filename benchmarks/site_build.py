#!/usr/bin/env python3
"""Site build time with N hosts: reading the RRDs alone (baseline) versus a whole pass.

Writes N simulated hosts' ``system`` series (the shipped config's 15
variables and rules, a small ladder) as real RRDs, then times, in the same
run, ``affair.outputs.status.collect`` (read every host's newest rows and evaluate
the rules: the baseline) and ``build_site`` (the same plus rendering and
atomically writing every page). The issue's bound: 1,000 hosts in under
10 s, an index under 1 MB.

    .venv/bin/python benchmarks/site_build.py --hosts 1000
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affair.config import DEFAULT_CONFIG, load_config  # noqa: E402
from affair.demo.simulation import SimulatedNode, host_names  # noqa: E402
from affair.outputs.site import build_site  # noqa: E402
from affair.outputs.status import collect  # noqa: E402
from affair.storage.rrd_store import RrdStore  # noqa: E402

SHIPPED_LADDER = (
    'ladder = ["10s:360", "1min:360", "4min:360", "30min:336", "2h:372", "6h:368", "1d:366"]'
)
SMALL_LADDER = 'ladder = ["10s:120", "1min:60"]'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="passes timed (best is reported)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="affair-site-build-"))
    try:
        config_path = workdir / "affair.toml"
        config_path.write_text(DEFAULT_CONFIG.read_text().replace(SHIPPED_LADDER, SMALL_LADDER))
        config = load_config(config_path)
        step = config.recorder.step
        data = workdir / "data"
        store = RrdStore(config, data)
        now = int(time.time()) // step * step
        started = time.monotonic()
        for name in host_names(args.hosts):
            node = SimulatedNode(name)
            rows = [(ts, node.sample(ts)) for ts in range(now - 60 * step, now + 1, step)]
            series = store.open_series(name, "system", "", list(rows[0][1]), rows[0][0])
            store.update_many(series, rows)
        print(f"{args.hosts} hosts written in {time.monotonic() - started:.1f} s")

        read, whole = [], []
        for _ in range(args.repeat):
            started = time.monotonic()
            collect(config, data, now + 3)
            read.append(time.monotonic() - started)
            started = time.monotonic()
            summary = build_site(
                config, data, workdir / "graphs", workdir / "site", lambda: now + 3
            )
            whole.append(time.monotonic() - started)
        index_kib = (workdir / "site" / "index.html").stat().st_size / 1024
        host_kib = (workdir / "site" / "host" / f"{host_names(1)[0]}.html").stat().st_size / 1024
        print(f"baseline, read + rules (collect): {min(read):.2f} s")
        print(f"whole pass (build_site):          {min(whole):.2f} s, {summary.pages} pages")
        print(f"ratio whole / read: {min(whole) / min(read):.1f}x")
        print(f"index {index_kib:.0f} KiB, a host page {host_kib:.1f} KiB")
        print(
            f"bound 10 s: {'met' if min(whole) < 10 else 'MISSED'}; index < 1 MB: "
            f"{'met' if index_kib * 1024 < 1_000_000 else 'MISSED'}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
