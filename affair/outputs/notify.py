"""Notifications on colour change: told once per change, reminded while it lasts, told when it ends.

After each site pass (affair.outputs.site), every ``[[notify]]`` target
(affair.config.notify) is given the hosts it watches whose colour moved into
or out of the colours it cares about:

    problem    a host turned one of the target's colours (or from one to another)
    repeat     still one of them ``repeat`` seconds after the last message
    resolved   back to a colour the target does not care about (``resolved = true``)

One JSON object per change (:func:`message`), a single line: on a command's
stdin, as a webhook's POST body, or as the body of a mail through sendmail.

What was last told to whom is kept in ``notify-state.json`` next to the
pages (replaced atomically), so a message goes out once per change, not once
per pass, and a restart does not repeat them. A send that fails is logged and
kept to be retried at the next passes (``retries`` times); a target that fails
is not tried again in the same pass, so a dead webhook costs one ``timeout``
per pass at most. It never stops the pages: they are written before this runs.

:func:`plan` is pure (state and statuses in, messages and state out); the
clock is passed in.
"""

import json
import logging
import subprocess
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from affair.atomic import write_atomic
from affair.errors import NotifyError
from affair.hosts import host_matcher

log = logging.getLogger(__name__)

STATE_FILE = "notify-state.json"
OK = "ok"  # a colour the target does not care about


def message(event, status, previous, now, site_title=""):
    """The JSON-ready dict a target is sent for one change of one host."""
    return {
        "event": event,
        "host": status.host,
        "group": status.group,
        "colour": status.colour,
        "previous": previous,
        "why": status.summary(now),
        "problems": [
            {"rule": r.rule.name, "colour": r.colour, "detail": r.detail} for r in status.problems
        ],
        "time": int(now),
        "site": site_title,
        "page": f"host/{status.host}.html",
    }


def plan(targets, statuses, state, now, site_title=""):
    """``(outbox, new_state)``: the messages due per target name, and what to remember.

    ``state`` is ``{target name: {"hosts": {host: {"level", "colour", "sent"}},
    "pending": [{"message", "attempts"}]}}`` as the last pass left it (or {}).
    """
    outbox = {}
    new_state = {}
    for target in targets:
        before = _table(state.get(target.name))  # a hand-edited file must not stop a pass
        known = _table(before.get("hosts"))
        watches = host_matcher(target.hosts)
        hosts = {}
        due = []
        for status in statuses:
            if not watches(status.host):
                continue
            level = status.colour if status.colour in target.colours else OK
            last = {"level": OK, "colour": "green", "sent": None, **_table(known.get(status.host))}
            if not isinstance(last["sent"], int | float):
                last["sent"] = None
            entry = {"level": level, "colour": status.colour, "sent": last["sent"]}
            event = None
            if level != last["level"]:
                if level != OK:
                    event = "problem"
                elif target.resolved:
                    event = "resolved"
            elif level != OK and target.repeat and now - (last["sent"] or 0) >= target.repeat:
                event = "repeat"
            if event:
                due.append(message(event, status, last["colour"], now, site_title))
                entry["sent"] = int(now)
            hosts[status.host] = entry
        pending = before.get("pending")
        kept = [p for p in pending if _is_pending(p)] if isinstance(pending, list) else []
        outbox[target.name] = [*kept, *({"message": m, "attempts": 0} for m in due)]
        new_state[target.name] = {"hosts": hosts, "pending": []}
    return outbox, new_state


def _table(value):
    return value if isinstance(value, dict) else {}


def _is_pending(item):
    return (
        isinstance(item, dict)
        and isinstance(item.get("message"), dict)
        and isinstance(item.get("attempts"), int)
    )


class Notifier:
    """Sends what :func:`plan` says is due and keeps the state file between passes."""

    def __init__(self, config, out_dir, runner=subprocess.run, opener=urllib.request.urlopen):
        self.config = config
        self.state_path = Path(out_dir) / STATE_FILE
        self._run = runner
        self._open = opener

    def notify(self, statuses, now):
        """One pass; returns ``{target name: messages sent}``."""
        targets = self.config.notify
        if not targets:
            return {}
        outbox, state = plan(targets, statuses, self._read_state(), now, self.config.site.title)
        sent = {}
        for target in targets:
            sent[target.name] = 0
            queue = outbox[target.name]
            for index, item in enumerate(queue):
                try:
                    self.send(target, item["message"])
                except NotifyError as error:
                    left = self._keep_for_retry(target, queue[index:], error)
                    state[target.name]["pending"] = left
                    break
                sent[target.name] += 1
        write_atomic(self.state_path, json.dumps(state, indent=1) + "\n")
        return sent

    def _keep_for_retry(self, target, unsent, error):
        first, rest = unsent[0], unsent[1:]
        attempts = first["attempts"] + 1
        if attempts > target.retries:
            log.error(
                "notify %s: giving up on %s %s after %d tries: %s",
                target.name,
                first["message"].get("event"),
                first["message"].get("host"),
                attempts,
                error,
            )
            return rest
        log.warning(
            "notify %s: %s %s not sent (try %d of %d, retried next pass): %s",
            target.name,
            first["message"].get("event"),
            first["message"].get("host"),
            attempts,
            target.retries + 1,
            error,
        )
        return [{**first, "attempts": attempts}, *rest]

    def send(self, target, change):
        body = json.dumps(change, sort_keys=True).encode() + b"\n"
        if target.command:
            self._run_program(target, list(target.command), body)
        elif target.url:
            request = urllib.request.Request(
                target.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "affair-notify"},
            )
            try:
                with self._open(request, timeout=target.timeout) as response:
                    response.read(1024)
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise NotifyError(f"POST {target.url}: {error}") from None
        else:
            mail = EmailMessage()
            mail["To"] = ", ".join(target.email)
            mail["Subject"] = (
                f"[affair] {change.get('host')} {change.get('event')}: "
                f"{change.get('previous')} -> {change.get('colour')}"
            )
            mail.set_content(f"{change.get('why', '')}\n\n{body.decode()}")
            self._run_program(target, [target.sendmail, "-t", "-oi"], bytes(mail))

    def _run_program(self, target, command, stdin):
        try:
            done = self._run(command, input=stdin, capture_output=True, timeout=target.timeout)
        except (OSError, subprocess.SubprocessError) as error:
            raise NotifyError(f"{command[0]}: {error}") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip()[:200]
            raise NotifyError(f"{command[0]} exited {done.returncode}: {said}")

    def _read_state(self):
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as error:  # a damaged file: start afresh rather than never notify
            log.warning("notify: ignoring %s: %s", self.state_path, error)
            return {}
        return state if isinstance(state, dict) else {}
