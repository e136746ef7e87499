"""The demo's simulated jobs: nodes held by one job at a time, each kind shaping its nodes."""

from affair.demo.jobs import KINDS, DemoJobs

T0 = 1_800_000_000


def test_jobs_hold_their_nodes_alone_and_shape_their_load():
    hosts = [f"n{i}" for i in range(6)]
    jobs = DemoJobs(hosts, T0, T0 + 86400)
    assert len(jobs.jobs) > 20
    assert [job.kind for job in jobs.jobs[:5]] == list(KINDS)
    for one in jobs.jobs:
        for other in jobs.jobs:
            if one is not other and one.start < other.end and other.start < one.end:
                assert not set(one.nodes) & set(other.nodes)
    idle = next(job for job in jobs.jobs if job.kind == "idle")
    values = jobs.adjust(idle.nodes[0], idle.start + 60, {"cpu_user": 80.0, "cpu_system": 5.0})
    assert values["cpu_user"] + values["cpu_system"] < 5
    swapping = next(job for job in jobs.jobs if job.kind == "swapping")
    assert (
        jobs.adjust(swapping.nodes[1], swapping.start + 60, {"swap_used": 0.0})["swap_used"] > 3e9
    )
    events = jobs.events_between(T0, T0 + 86400)
    assert [action for _, job, action in events if job is idle] == ["start", "end"]
    assert idle.event("end")["end"] == idle.end and idle.event("start")["nodelist"] == ",".join(
        idle.nodes
    )
