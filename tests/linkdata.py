"""Link test data: a telescope pipeline's links as real RRDs (the ``links`` dataset).

Telescope ``telNN`` runs camera -> r0dl1 -> dl1dl2; every dl1dl2 feeds both
stereo daemons (``stereo01/stereo``, ``stereo02/stereo``), which feed the
data recorder (``datarec01/recorder``).
"""

from affair.names import link_instance
from tests.sitedata import grid, write_rows

LEVELS = ["camera", "r0dl1", "dl1dl2", "stereo", "recorder"]


def telescope(number, width=2):
    return f"tel{number:0{width}d}"


def pipeline(telescopes):
    """The pipeline's links, as (source, target) pairs, in a stable order."""
    width = max(2, len(str(telescopes)))
    links = []
    for number in range(1, telescopes + 1):
        host = telescope(number, width)
        links += [(f"{host}/camera", f"{host}/r0dl1"), (f"{host}/r0dl1", f"{host}/dl1dl2")]
        links += [(f"{host}/dl1dl2", "stereo01/stereo"), (f"{host}/dl1dl2", "stereo02/stereo")]
    links += [("stereo01/stereo", "datarec01/recorder"), ("stereo02/stereo", "datarec01/recorder")]
    return links


def topology_toml(links):
    expected = ",\n  ".join(f'"{a} -> {b}"' for a, b in links)
    levels = ", ".join(f'"{level}"' for level in LEVELS)
    return f"\n[topology]\nlevels = [{levels}]\nexpected = [\n  {expected}\n]\n"


def write_link(
    store, source, target, now, rate=10.0, p95=0.01, loss=0.0, steps=30, silent_for=0, errors=0.0
):
    """Both ends of one link for the last ``steps`` steps: the source's and the target's report."""
    step = store.config.recorder.step
    source_host, source_daemon = source.split("/")
    target_host, target_daemon = target.split("/")
    times = grid(now, steps, silent_for)

    def values(received_fraction):
        messages = rate * step * received_fraction
        return {
            "messages": messages,
            "bytes": messages * 1000,
            "errors": errors * step,
            "rate": rate * received_fraction,
            "lat_count": messages,
            "lat_mean": p95 / 2,
            "lat_p50": p95 / 3,
            "lat_p95": p95,
            "lat_max": p95 * 2,
        }

    out = link_instance(source_daemon, "out", target_host, target_daemon)
    write_rows(store, source_host, "links", [(ts, values(1.0)) for ts in times], out)
    inbound = link_instance(target_daemon, "in", source_host, source_daemon)
    write_rows(store, target_host, "links", [(ts, values(1.0 - loss)) for ts in times], inbound)


def write_pipeline(store, telescopes, now, slow=None, lossy=None, dead=None):
    """Every link of the pipeline, rates spread over decades; three chosen links misbehave."""
    for index, (source, target) in enumerate(pipeline(telescopes)):
        link = (source, target)
        if link == dead:
            continue
        rate = 10.0 ** (index % 4)  # 1, 10, 100, 1000 msg/s
        write_link(
            store,
            source,
            target,
            now,
            rate=rate,
            p95=5.0 if link == slow else 0.01,
            loss=0.2 if link == lossy else 0.0,
        )


def end_snapshot(instance, now, rate=10.0, p95=0.01, received_fraction=1.0, rows=12, step=10):
    """One link end's SeriesSnapshot in memory, as affair.outputs.status reads it from an RRD."""
    from affair.outputs.status import SeriesSnapshot  # noqa: PLC0415

    last = int(now) // step * step
    times = tuple(last - step * i for i in range(rows - 1, -1, -1))
    value = rate * received_fraction
    columns = {
        "messages": (value * step,) * rows,
        "errors": (0.0,) * rows,
        "rate": (value,) * rows,
        "lat_p50": (p95 / 3,) * rows,
        "lat_p95": (p95,) * rows,
        "lat_max": (p95 * 2,) * rows,
        "lat_mean": (p95 / 2,) * rows,
    }
    return SeriesSnapshot("links", instance, last, step, times, columns)


class SnapshotOnly:
    """What the topology reads of a HostStatus: its snapshot."""

    def __init__(self, snapshot):
        self.snapshot = snapshot


def pipeline_statuses(telescopes, now, slow=None, lossy=None, dead=None, extra=()):
    """The pipeline's link ends in memory (no RRDs): ``[status-like, ...]`` by host.

    ``extra``: more (source, target) links, not in the pipeline's expected ones.
    """
    from affair.outputs.status import HostSnapshot  # noqa: PLC0415

    series = {}
    for index, (source, target) in enumerate([*pipeline(telescopes), *extra]):
        if (source, target) == dead:
            continue
        rate = 10.0 ** (index % 4)
        p95 = 5.0 if (source, target) == slow else 0.01
        (sh, sd), (th, td) = source.split("/"), target.split("/")
        out = end_snapshot(link_instance(sd, "out", th, td), now, rate, p95)
        fraction = 0.8 if (source, target) == lossy else 1.0
        inbound = end_snapshot(link_instance(td, "in", sh, sd), now, rate, p95, fraction)
        series.setdefault(sh, []).append(out)
        series.setdefault(th, []).append(inbound)
    return [
        SnapshotOnly(HostSnapshot(host, tuple(items))) for host, items in sorted(series.items())
    ]
