"""Notifications: once per change, repeats, resolved, retries; a real command, a real webhook."""

import http.server
import json
import stat
import threading

import pytest
from sitedata import SITE_CONFIG, STEP, drive, site_config

from affair.errors import ConfigError
from affair.outputs.notify import STATE_FILE, Notifier, plan
from affair.outputs.site import build_site
from affair.outputs.status import HostSnapshot, SeriesSnapshot, evaluate_host
from affair.storage.rrd_store import RrdStore

NOW = 1_700_000_000


def config_with(notify):
    return site_config(SITE_CONFIG + "\n" + notify)


def statuses(config, **cpu_by_host):
    made = []
    for host, cpu in cpu_by_host.items():
        series = SeriesSnapshot("system", "", NOW, STEP, (NOW,), {"cpu_user": (cpu,)})
        made.append(evaluate_host(HostSnapshot(host, (series,)), config, NOW, "ldc"))
    return made


TARGET = """
[[notify]]
name = "ops"
command = ["true"]
colours = ["red", "yellow"]
hosts = ["ldc*"]
repeat = "1h"
"""


def test_a_change_is_told_once_repeated_while_it_lasts_and_resolved():
    config = config_with(TARGET)
    targets = config.notify
    out, state = plan(targets, statuses(config, ldc01=99.0, ldc02=10.0, gdc01=99.0), {}, NOW)
    assert [(m["message"]["event"], m["message"]["host"]) for m in out["ops"]] == [
        ("problem", "ldc01")
    ]  # gdc01 is not the target's; ldc02 is green
    told = out["ops"][0]["message"]
    assert (told["colour"], told["previous"], told["page"]) == ("red", "green", "host/ldc01.html")
    assert told["why"] == "system.cpu_user 99 % > 95 %"
    assert told["problems"] == [
        {"rule": "system.cpu_user > 80 / 95", "colour": "red", "detail": told["why"]}
    ]
    # the next pass, still red: nothing; red to yellow: a change both care about
    out, state = plan(targets, statuses(config, ldc01=99.0), state, NOW + 30)
    assert out["ops"] == []
    out, state = plan(targets, statuses(config, ldc01=85.0), state, NOW + 60)
    assert [(m["message"]["event"], m["message"]["previous"]) for m in out["ops"]] == [
        ("problem", "red")
    ]
    # an hour after the last message: a reminder; then back to green: resolved
    out, state = plan(targets, statuses(config, ldc01=85.0), state, NOW + 60 + 3599)
    assert out["ops"] == []
    out, state = plan(targets, statuses(config, ldc01=85.0), state, NOW + 60 + 3600)
    assert [m["message"]["event"] for m in out["ops"]] == ["repeat"]
    out, state = plan(targets, statuses(config, ldc01=10.0), state, NOW + 4000)
    assert [(m["message"]["event"], m["message"]["colour"]) for m in out["ops"]] == [
        ("resolved", "green")
    ]


def test_a_command_gets_each_change_as_one_json_line_on_stdin(tmp_path):
    log_file = tmp_path / "told.log"
    config = config_with(
        f'[[notify]]\ncommand = ["sh", "-c", "cat >> {log_file}"]\ncolours = ["red"]\n'
    )
    notifier = Notifier(config, tmp_path)
    assert notifier.notify(statuses(config, ldc01=99.0, ldc02=99.0), NOW) == {"command#0": 2}
    assert notifier.notify(statuses(config, ldc01=99.0, ldc02=99.0), NOW + 10) == {"command#0": 0}
    assert notifier.notify(statuses(config, ldc01=10.0, ldc02=99.0), NOW + 20) == {"command#0": 1}
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(m["event"], m["host"], m["colour"]) for m in lines] == [
        ("problem", "ldc01", "red"),
        ("problem", "ldc02", "red"),
        ("resolved", "ldc01", "green"),
    ]
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["command#0"]["hosts"]["ldc01"] == {
        "level": "ok",
        "colour": "green",
        "sent": NOW + 20,
    }


class Receiver(http.server.BaseHTTPRequestHandler):
    """Answers with the next status of the server's ``answers`` and keeps what it got."""

    def do_POST(self):  # noqa: N802 - the base class's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers["Content-Type"], json.loads(body)))
        code = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.answers = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_a_webhook_that_fails_is_retried_at_the_next_pass_and_then_given_up(
    receiver, tmp_path, caplog
):
    port = receiver.server_address[1]
    config = config_with(
        f'[[notify]]\nname = "hook"\nurl = "http://127.0.0.1:{port}/alert"\nretries = 1\n'
        'timeout = "5s"\n'
    )
    notifier = Notifier(config, tmp_path)
    receiver.answers = [500]
    assert notifier.notify(statuses(config, ldc01=99.0), NOW) == {"hook": 0}
    assert "hook: problem ldc01 not sent (try 1 of 2, retried next pass)" in caplog.text
    assert notifier.notify(statuses(config, ldc01=99.0), NOW + 10) == {"hook": 1}
    assert [(kind, m["event"], m["host"]) for kind, m in receiver.received] == [
        ("application/json", "problem", "ldc01"),
        ("application/json", "problem", "ldc01"),
    ]
    # one that keeps failing is given up after its retries, and the later ones still go
    receiver.answers = [500, 500]
    notifier.notify(statuses(config, ldc01=10.0), NOW + 20)
    notifier.notify(statuses(config, ldc01=10.0), NOW + 30)
    assert "giving up on resolved ldc01 after 2 tries" in caplog.text
    assert notifier.notify(statuses(config, ldc01=99.0), NOW + 40) == {"hook": 1}
    assert [m["event"] for _kind, m in receiver.received][-1] == "problem"


@pytest.mark.integration
def test_a_dead_target_never_stops_the_pages(tmp_path):
    closed = tmp_path / "no-such-dir" / "x"
    config = config_with(
        '[[notify]]\nname = "down"\nurl = "http://127.0.0.1:9/nothing"\ntimeout = "2s"\n'
        f'[[notify]]\nname = "failing"\ncommand = ["sh", "-c", "cat > {closed}"]\n'
    )
    store = RrdStore(config, tmp_path / "data")
    drive(store, "ldc01", NOW, cpu=99.0)
    summary = build_site(config, tmp_path / "data", tmp_path / "g", tmp_path / "site", lambda: NOW)
    assert summary.counts["red"] == 1
    assert (tmp_path / "site" / "host" / "ldc01.html").is_file()
    state = json.loads((tmp_path / "site" / STATE_FILE).read_text())
    assert [len(state[name]["pending"]) for name in ("down", "failing")] == [1, 1]


@pytest.mark.parametrize(
    ("notify", "key", "expected"),
    [
        ('url = "ftp://example.org/x"', "notify[0].url", "an http:// or https:// URL"),
        ('url = "http:///nohost"', "notify[0].url", "an http:// or https:// URL"),
        ('command = ["/nonexistent/page-me"]', "notify[0].command", "an executable program"),
        ('command = ["no-such-program-anywhere"]', "notify[0].command", "an executable program"),
        ('command = ["true"]\nurl = "http://x/"', "notify[0]", "exactly one of"),
        ('name = "x"', "notify[0]", "exactly one of"),
        ('command = ["true"]\ncolours = ["green"]', "notify[0].colours", "'red', 'yellow'"),
        ('command = ["true"]\nrepeat = "often"', "notify[0].repeat", "a duration"),
        ('email = ["ops"]', "notify[0].email", "addresses like"),
        ('email = ["ops@x.org"]\nsendmail = "/nonexistent"', "notify[0].sendmail", "executable"),
        ('command = ["true"]\nwebhook = "x"', "notify[0].webhook", "a known key"),
    ],
)
def test_bad_targets_are_config_errors_at_load(notify, key, expected):
    with pytest.raises(ConfigError) as caught:
        config_with("[[notify]]\n" + notify)
    assert caught.value.key == key
    assert expected in caught.value.expected


def test_a_command_that_is_not_executable_is_refused(tmp_path):
    script = tmp_path / "page-me"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(ConfigError, match="an executable program"):
        config_with(f'[[notify]]\ncommand = ["{script}"]\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert config_with(f'[[notify]]\ncommand = ["{script}"]\n').notify[0].kind == "command"


def test_the_demo_appends_red_changes_to_a_log_in_its_workdir(tmp_path, monkeypatch):
    from affair.config import load_config
    from affair.demo.launcher import with_demo_notify

    config = load_config(with_demo_notify(None, tmp_path))
    assert [(t.name, t.kind, t.colours) for t in config.notify] == [
        ("demo-log", "command", ("red",))
    ]
    assert any(r.dataset == "daq" and r.variable == "buffer_pct" for r in config.status.rules)
    monkeypatch.chdir(tmp_path)  # the scheduler's cwd is the workdir
    times = tuple(NOW - STEP * i for i in range(6, -1, -1))  # a busy minute: held
    busy = SeriesSnapshot("system", "", NOW, STEP, times, {"cpu_user": (99.0,) * 7})
    vm = evaluate_host(HostSnapshot("vm", (busy,)), config, NOW)
    assert vm.colour == "red"
    Notifier(config, tmp_path / "site").notify([vm], NOW)
    told = json.loads((tmp_path / "notifications.log").read_text())
    assert (told["event"], told["host"], told["colour"]) == ("problem", "vm", "red")


def test_a_damaged_state_file_does_not_stop_a_pass(tmp_path):
    log_file = tmp_path / "told.log"
    config = config_with(f'[[notify]]\nname = "t"\ncommand = ["sh", "-c", "cat >> {log_file}"]\n')
    for damaged in (
        "not json",
        '["a list"]',
        '{"t": {"hosts": {"ldc01": {"level": 3, "sent": "x"}}, "pending": [1, {"m": 2}]}}',
        '{"t": []}',
    ):
        (tmp_path / STATE_FILE).write_text(damaged)
        assert Notifier(config, tmp_path).notify(statuses(config, ldc01=99.0), NOW) == {"t": 1}
    assert len(log_file.read_text().splitlines()) == 4  # each time: told afresh


def test_an_email_goes_through_sendmail_with_a_subject_and_the_json(tmp_path):
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat > {tmp_path}/mail\n')
    sendmail.chmod(0o755)
    config = config_with(f'[[notify]]\nemail = ["ops@example.org"]\nsendmail = "{sendmail}"\n')
    assert Notifier(config, tmp_path).notify(statuses(config, ldc01=99.0), NOW) == {"email#0": 1}
    assert (tmp_path / "args").read_text().split() == ["-t", "-oi"]
    mail = (tmp_path / "mail").read_text()
    assert "To: ops@example.org" in mail
    assert "Subject: [affair] ldc01 problem: green -> red" in mail
    assert '"host": "ldc01"' in mail
