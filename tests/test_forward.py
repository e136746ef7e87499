"""Forwarding without sockets: the encoders' bytes, the config's refusals, the loop's
retries, rewinds and refusals against a fake target, retention's floor, the journal tail."""

import http.server
import json
import threading

import pytest

from affair.config import load_config, parse_config
from affair.demo.victoria import forward_config
from affair.errors import ConfigError, ForwardError
from affair.ingest.forward import Forwarder, GraphiteTarget, InfluxTarget
from affair.ingest.forward_encode import graphite_lines, influx_lines
from affair.ingest.forward_processes import ForwarderProcesses, forward_keep_from, unsent_in_day
from affair.ingest.validate import Sample
from affair.storage.journal import Journal, Watermark
from affair.storage.journal_tail import JournalTail

ROW = (("2026-01-01", 1), 1700000000.25, "n01", "system", "", {"cpu_user": 1.5, "load1": None})
ROW_INSTANCE = (("2026-01-01", 2), 1700000010.0, "n01.a.b", "net", "eth0", {"rx": 3.0})


def test_influx_lines_name_series_as_victoriametrics_reads_them():
    assert influx_lines([ROW, ROW_INSTANCE]) == (
        b"affair_system,host=n01 cpu_user=1.5 1700000000250\n"
        b"affair_net,host=n01.a.b,instance=eth0 rx=3.0 1700000010000\n"
    )
    assert influx_lines([ROW], prefix="") == b"system,host=n01 cpu_user=1.5 1700000000250\n"


def test_a_sample_with_no_known_value_makes_no_line():
    row = (("d", 1), 1.0, "n01", "system", "", {"cpu_user": None})
    assert influx_lines([row]) == b""
    assert graphite_lines([row]) == b""


def test_influx_escapes_what_would_break_a_line():
    row = (("d", 1), 1.0, "a b,c", "system", "", {"x=y": 2.0})
    assert influx_lines([row]) == b"affair_system,host=a\\ b\\,c x\\=y=2.0 1000\n"


def test_graphite_lines_one_per_value_with_fqdn_dots_folded():
    assert graphite_lines([ROW, ROW_INSTANCE], prefix="site") == (
        b"site.n01.system.cpu_user 1.5 1700000000.25\nsite.n01_a_b.net.eth0.rx 3.0 1700000010\n"
    )
    assert graphite_lines([ROW], prefix="") == b"n01.system.cpu_user 1.5 1700000000.25\n"


def target_config(**changes):
    entry = {"name": "vm", "url": "http://127.0.0.1:8428/write", **changes}
    return parse_config({"forward": [entry]})


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"url": "ftp://vm/write"}, "forward[0].url"),
        ({"url": "http://:8428/write"}, "forward[0].url"),
        ({"url": "http://vm:99999/write"}, "forward[0].url"),
        ({"kind": "graphite", "address": "vm:"}, "forward[0].address"),
        ({"kind": "graphite", "address": "vm:70000"}, "forward[0].address"),
        ({"kind": "graphite"}, "forward[0].address"),
        ({"kind": "influx"}, "forward[0].url"),
        ({"kind": "kafka", "url": "http://vm/"}, "forward[0].kind"),
        ({"url": "http://vm/", "prefix": "a.b"}, "forward[0].prefix"),
        ({"url": "http://vm/", "name": "../x"}, "forward[0].name"),
        ({"url": "http://vm/", "lag_yellow": 600, "lag_red": 60}, "forward[0].lag_red"),
        ({"url": "http://vm/", "batch": 5}, "forward[0].batch"),
    ],
)
def test_a_bad_target_is_a_config_error_naming_its_key(entry, key):
    with pytest.raises(ConfigError) as caught:
        parse_config({"forward": [entry]})
    assert caught.value.key == key


def test_two_targets_may_not_share_a_name():
    with pytest.raises(ConfigError, match=r"forward\[1\]\.name"):
        parse_config({"forward": [{"name": "a", "url": "http://x/"}] * 2})


def test_a_target_adds_a_lag_rule_for_the_recorders_own_host():
    config = parse_config(
        {
            "recorder": {"self_host": "station1"},
            "forward": [
                {"name": "a", "url": "http://x/", "lag_yellow": "10min", "lag_red": "1h"},
                {"name": "b", "url": "http://y/", "lag_yellow": 120, "lag_red": 7200},
            ],
        }
    )
    rule = config.status.rules[-1]
    assert (rule.dataset, rule.variable, rule.op) == ("forward", "lag_seconds", ">")
    assert (rule.yellow, rule.red, rule.hosts) == (120, 3600, ("station1",))
    assert parse_config({}).status.rules == ()


class FakeTarget:
    """Answers from a script: None (taken), a refusal text, or an exception to raise."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.sent = []  # the row ids of every batch it was given, taken or not

    def encode(self, rows):
        return [row[0][1] for row in rows]

    def send(self, body):
        self.sent.append(body)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def journal_with(tmp_path, count, now=1_800_000_000.0):
    journal = Journal(tmp_path / "_journal", clock=lambda: now)
    journal.append(
        [Sample(0, now - count + i, "n01", "system", "", {"v": float(i)}) for i in range(count)]
    )
    journal.close()
    (tmp_path / "_state").mkdir(exist_ok=True)


def forwarder(tmp_path, answers=(), clock=None, **changes):
    target = target_config(**changes).forward[0]
    clock = clock or Clock()
    return Forwarder(
        target, tmp_path / "_journal", tmp_path / "_state", FakeTarget(answers), monotonic=clock
    )


def test_batches_move_the_watermark_only_once_taken(tmp_path):
    journal_with(tmp_path, 10)
    down = ForwardError("vm", "connection refused")
    f = forwarder(tmp_path, answers=[None, down, down, None, None], batch_size=4)
    assert f.step() == 4
    assert Watermark(tmp_path / "_state" / "forward-vm.watermark").load()[1] == 4
    assert f.step() == 0 and f.backoff == 0.5  # refused: counted, retried after a backoff
    assert f.step() == 0 and f.backoff == 1.0
    assert f.step() == 4 and f.backoff == 0
    assert f.step() == 4
    assert f.step() == 2
    assert f.step() == 0  # caught up: nothing sent
    # the first batch was within resend_window of the failure: sent again after it
    assert f.sender.sent == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [1, 2, 3, 4],
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]
    assert f.counts == {"sent": 14, "rejected": 0, "failures": 2}
    assert Watermark(tmp_path / "_state" / "forward-vm.watermark").load()[1] == 10


def test_backoff_doubles_up_to_its_cap(tmp_path):
    journal_with(tmp_path, 3)
    f = forwarder(tmp_path, answers=[ForwardError("vm", "down")] * 8, backoff_cap=3)
    backoffs = []
    for _ in range(6):
        f.step()
        backoffs.append(f.backoff)
    assert backoffs == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert f.tail.position == ("", 0)  # nothing was taken: it starts over from the beginning


def test_what_was_sent_before_the_window_is_not_sent_again(tmp_path):
    journal_with(tmp_path, 6)
    clock = Clock()
    f = forwarder(
        tmp_path,
        answers=[None, None, ForwardError("vm", "down")],
        clock=clock,
        batch_size=2,
        resend_window=10,
    )
    f.step()
    clock.now += 30  # the first batch is older than the window: VictoriaMetrics flushed it
    f.step()
    f.step()
    assert f.tail.position[1] == 2  # back to the start of the second batch, not the first
    f.step()
    assert f.sender.sent[-1] == [3, 4]


def test_a_refused_batch_is_counted_and_left_behind(tmp_path, caplog):
    journal_with(tmp_path, 5)
    f = forwarder(tmp_path, answers=["HTTP 400: cannot parse line"], batch_size=3)
    assert f.step() == 3
    assert f.step() == 2
    assert f.counts == {"sent": 2, "rejected": 3, "failures": 0}
    assert "3 samples refused: HTTP 400: cannot parse line" in caplog.text
    assert f.state()["last_error"] == ""


def test_state_says_how_far_behind_and_counters_survive_a_restart(tmp_path):
    journal_with(tmp_path, 10)
    f = forwarder(tmp_path, batch_size=4)
    f.clock = lambda: 1_800_000_100.0
    state = f.state()
    assert (state["lag_samples"], state["lag_seconds"]) == (10, 100.0)
    f.step()
    f.write_state(force=True)
    saved = json.loads((tmp_path / "_state" / "forward-vm.json").read_text())
    assert (saved["sent"], saved["lag_samples"]) == (4, 6)
    again = forwarder(tmp_path, batch_size=4)
    assert again.counts["sent"] == 4 and again.tail.position[1] == 4
    again.tail.read(6)  # read ahead (run() does, while a batch is in flight): not yet sent
    assert again.state()["lag_samples"] == 6 and again.state()["position"][1] == 4


def test_run_stops_on_its_event_and_writes_its_state(tmp_path):
    journal_with(tmp_path, 3)
    f = forwarder(tmp_path)
    stop = threading.Event()
    calls = []

    def parent_alive():
        calls.append(1)
        return len(calls) < 3

    f.run(stop, parent_alive)
    assert json.loads((tmp_path / "_state" / "forward-vm.json").read_text())["sent"] == 3


def test_retention_keeps_what_a_forwarder_has_not_sent_up_to_its_cap():
    hold = {"a": "2026-01-01", "b": "2026-01-01"}
    assert (
        forward_keep_from("2026-01-10", {"a": ("2026-01-12", 5), "b": None}, hold) == "2026-01-01"
    )
    assert (
        forward_keep_from("2026-01-10", {"a": ("2026-01-05", 5), "b": ("2026-01-11", 1)}, hold)
        == "2026-01-05"
    )
    assert (
        forward_keep_from("2026-01-10", {"a": ("2025-12-20", 5)}, {"a": "2026-01-01"})
        == "2026-01-01"
    )
    assert forward_keep_from("2026-01-10", {}, {}) == "2026-01-10"
    assert unsent_in_day(100, ("2026-01-05", 40), "2026-01-05") == 60
    assert unsent_in_day(100, ("2026-01-06", 1), "2026-01-05") == 0
    assert unsent_in_day(100, None, "2026-01-05") == 100


def test_days_past_the_cap_go_and_their_unsent_samples_are_counted(tmp_path, caplog):
    day = 86400
    now = 1_800_000_000.0 - 1_800_000_000.0 % day + 3600
    for offset in (5, 3, 0):
        journal = Journal(tmp_path / "_journal", clock=lambda o=offset: now - o * day)
        journal.append(
            [Sample(0, now - offset * day - i, "n", "d", "", {"v": 1.0}) for i in range(4)]
        )
        journal.close()
    (tmp_path / "_state").mkdir()
    config = parse_config(
        {
            "recorder": {"data_dir": str(tmp_path), "journal_days": 1},
            "forward": [{"name": "vm", "url": "http://x/", "hold_days": 3}],
        }
    )
    days = sorted(p.stem for p in (tmp_path / "_journal").glob("*.sqlite"))
    Watermark(tmp_path / "_state" / "forward-vm.watermark").save((days[0], 1))
    processes = ForwarderProcesses(config)
    keep_from = processes.keep_from(days[2], now)
    # 1 + 3 days back: the 5-day-old file goes, the 3-day-old stays
    assert days[0] < keep_from < days[1]
    assert processes.skipped == {"vm": 3}  # rows 2..4 of the removed day were never sent
    assert f"journal day {days[0]} goes before 3 of its samples were sent" in caplog.text
    assert processes.self_samples()["vm"]["skipped"] == 3.0


def test_the_tail_follows_day_files_and_sees_rows_added_to_the_open_one(tmp_path):
    now = [1_800_000_000.0]
    journal = Journal(tmp_path, clock=lambda: now[0])
    journal.append([Sample(0, now[0] - i, "n", "d", "", {"v": float(i)}) for i in range(3)])
    tail = JournalTail(tmp_path, None)
    assert [row[5]["v"] for row in tail.read(10)] == [0.0, 1.0, 2.0]
    assert tail.read(10) == []
    journal.append(
        [Sample(0, now[0] + 1, "n", "d", "inst", {"w": 5.0})]
    )  # a new series, new variable
    got = tail.read(10)
    assert [(row[4], row[5]) for row in got] == [("inst", {"w": 5.0})]
    now[0] += 86400
    journal.append([Sample(0, now[0], "n", "d", "", {"v": 9.0})])
    got = tail.read(10)
    assert [row[5]["v"] for row in got] == [9.0] and got[0][0][1] == 1
    assert tail.backlog() == (0, None)
    tail.seek(None)
    assert tail.backlog()[0] == 5 and len(tail.read(2)) == 2 and tail.backlog()[0] == 3
    tail.close()
    journal.close()


@pytest.mark.integration
def test_the_influx_target_retries_5xx_and_refused_connections_and_gives_up_on_4xx(
    closed_endpoint,
):
    answers = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the base class's name
            length = int(self.headers["Content-Length"])
            answers.append((self.path, self.rfile.read(length)))
            status, text = replies.pop(0)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args):
            pass

    replies = [(204, b""), (400, b"cannot parse 'x y'"), (503, b"busy"), (429, b"slow down")]
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/write?db=x"
        target = InfluxTarget(target_config(url=url, timeout=5).forward[0])
        assert target.send(b"a,host=n v=1 1000\n") is None
        assert target.send(b"x y\n") == "HTTP 400: cannot parse 'x y'"
        with pytest.raises(ForwardError, match="HTTP 503: busy"):
            target.send(b"a v=1\n")
        with pytest.raises(ForwardError, match="HTTP 429"):
            target.send(b"a v=1\n")
        assert answers[0] == ("/write?db=x&precision=ms", b"a,host=n v=1 1000\n")
        target.close()
    finally:
        server.shutdown()
        server.server_close()
    port = closed_endpoint.rsplit(":", 1)[1]
    refused = InfluxTarget(target_config(url=f"http://127.0.0.1:{port}/write").forward[0])
    with pytest.raises(ForwardError, match="POST"):
        refused.send(b"a v=1\n")
    entry = {"name": "g", "kind": "graphite", "address": f"127.0.0.1:{port}"}
    graphite = GraphiteTarget(parse_config({"forward": [entry]}).forward[0])
    with pytest.raises(ForwardError, match=f"graphite 127.0.0.1:{port}"):
        graphite.send(b"a.b 1 1\n")


def test_the_demo_forward_config_is_the_users_plus_one_target(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[recorder]\nstep = 10\n\n[site]\ntitle = "x"\n')
    path = forward_config(str(user), tmp_path, "http://127.0.0.1:8428")
    config = load_config(path)
    assert config.site.title == "x"
    assert [(t.name, t.kind, t.url) for t in config.forward] == [
        ("demo_vm", "influx", "http://127.0.0.1:8428/write")
    ]
    assert (
        load_config(forward_config(None, tmp_path, "http://h:1")).forward[0].url
        == "http://h:1/write"
    )
