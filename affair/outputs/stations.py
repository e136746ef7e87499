"""Several stations behind one index: other stations' hosts, read from their ``status.json``.

Each station builds its own pages (``affair site``), and with them a
``status.json`` of every host's colour. An index that lists other stations
(``[[site.stations]]``) reads theirs, by path or over HTTP on each build, and
shows their hosts linking to their own station's pages. A station that
cannot be read, or whose status is old, is shown grey with the reason; the
rest of the index is built all the same.
"""

import json
import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3

from affair.outputs.status import format_age, format_clock
from affair.vocab import SEVERITY, STATUS_COLOURS

STALE_AFTER = 600  # seconds: a status.json older than this says its station stopped building


def fetch_status(source: str, timeout: float) -> Any:
    """The parsed status.json at a path or http(s) URL; OSError or ValueError with the reason."""
    if source.startswith(("http://", "https://")):
        try:
            response = urllib3.request("GET", source, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as error:
            raise OSError(f"cannot fetch {source}: {error}") from None
        if response.status != 200:
            raise OSError(f"{source} answered HTTP {response.status}")
        return json.loads(response.data)
    return json.loads(Path(source.removeprefix("file://")).read_text())


def pages_base(station: Any) -> str:
    """Where the station's pages are: its ``pages``, else the folder of its status.json."""
    base = station.pages or posixpath.dirname(station.status)
    return base if base.endswith("/") else base + "/"


def station_view(station: Any, document: Any, now: float) -> dict[str, Any]:
    """The index's model of one station from its status.json (pure: no reading)."""
    base = pages_base(station)
    view: dict[str, Any] = {
        "name": station.name,
        "href": base + "index.html",
        "hosts": [],
        "counts": None,
    }
    hosts = document.get("hosts") if isinstance(document, dict) else None
    if not isinstance(hosts, dict):
        return {**view, "colour": "grey", "why": "its status.json has no hosts table"}
    counts = dict.fromkeys(STATUS_COLOURS, 0)
    for host, entry in sorted(hosts.items()):
        entry = entry if isinstance(entry, dict) else {}
        colour = str(entry.get("colour"))
        colour = colour if colour in counts else "grey"
        counts[colour] += 1
        last = entry.get("last_sample")
        last = last if isinstance(last, int | float) else None
        view["hosts"].append(
            {
                "host": str(host),
                "href": base + "host/" + quote(f"{host}.html"),
                "colour": colour,
                "severity": SEVERITY[colour],
                "last_sample": last,
                "clock": format_clock(last, now) if last else "never",
                "why": "" if colour == "green" else str(entry.get("why", "")),
            }
        )
    built = document.get("built")
    age = now - built if isinstance(built, int | float) else None
    if age is None or age > STALE_AFTER:
        when = "never" if age is None else f"{format_age(age)} ago"
        return {**view, "counts": counts, "colour": "grey", "why": f"status built {when}"}
    worst = max((h["colour"] for h in view["hosts"]), key=SEVERITY.__getitem__, default="green")
    return {**view, "counts": counts, "colour": worst, "why": f"built {format_age(age)} ago"}


def station_views(stations: Any, now: float) -> list[dict[str, Any]]:
    """Each configured station, read now; unreadable ones grey with the reason."""
    views = []
    for station in stations:
        try:
            document = fetch_status(station.status, station.timeout)
        except (OSError, ValueError) as error:
            views.append(
                {
                    "name": station.name,
                    "href": pages_base(station) + "index.html",
                    "hosts": [],
                    "counts": None,
                    "colour": "grey",
                    "why": f"cannot read {station.status}: {error}",
                }
            )
            continue
        views.append(station_view(station, document, now))
    return views
