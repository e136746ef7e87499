"""How far each ``[[forward]]`` target is behind, for the index page: read from the forwarders' state files.

Each forwarder writes ``<data_dir>/_state/forward-<name>.json`` about once a
second (affair.ingest.forward); this reads them as the site builder's other
inputs, files on disk. A target is coloured by its lag against its own
``lag_yellow``/``lag_red``; a state file that is missing or has not been
rewritten for a minute means no forwarder is running: grey, with the reason.
"""

import json
from pathlib import Path
from typing import Any

from affair.outputs.status import format_age

STATE_STALE_AFTER = 60  # seconds without a new state file: the forwarder is not running


def forward_rows(config: Any, data_dir: str | Path, now: float) -> list[dict[str, Any]]:
    """One row per target: name, where to, colour, lag, counters and why."""
    state_dir = Path(data_dir) / "_state"
    rows = []
    for target in config.forward:
        where = target.url or "{}:{}".format(*target.address)
        row: dict[str, Any] = {"name": target.name, "kind": target.kind, "where": where}
        try:
            state = json.loads((state_dir / f"forward-{target.name}.json").read_text())
        except (OSError, ValueError):
            state = None
        if not isinstance(state, dict):
            rows.append({**row, "colour": "grey", "why": "no forwarder has reported yet"})
            continue
        row.update(
            lag_seconds=float(state.get("lag_seconds", 0.0)),
            lag_samples=int(state.get("lag_samples", 0)),
            sent=int(state.get("sent", 0)),
            rejected=int(state.get("rejected", 0)),
            failures=int(state.get("failures", 0)),
            lag_text=format_age(float(state.get("lag_seconds", 0.0))),
        )
        age = now - float(state.get("time", 0.0))
        if age > STATE_STALE_AFTER:
            row.update(
                colour="grey", why=f"no report for {format_age(age)}: is the recorder running?"
            )
        elif row["lag_seconds"] > target.lag_red:
            row.update(colour="red", why=state.get("last_error") or "far behind")
        elif row["lag_seconds"] > target.lag_yellow:
            row.update(colour="yellow", why=state.get("last_error") or "behind")
        else:
            row.update(colour="green", why=state.get("last_error") or "keeping up")
        rows.append(row)
    return rows
