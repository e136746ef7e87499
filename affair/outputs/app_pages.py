"""A page per application dataset instance: what an application's own rules and graphs say.

An application dataset (``application = true`` under ``[datasets.<name>]``:
data an application publishes about itself through affair.collectors.client,
like the demo's ``daq``) is otherwise a few graphs far down its host's page.
Each series of one gets ``app/<host>@<dataset>[.<instance>].html`` ('@' is in
no valid name, so the file name cannot collide), linked from the top of the
host's page with its own colour: the worst of the rules judging that series,
or grey when the series has had no sample for ``status.stale_steps`` steps.

Pure: the page models are made from a HostStatus and the host page's graph
sections; affair.outputs.site renders and writes them.
"""

from dataclasses import dataclass
from urllib.parse import quote

from affair.outputs.status import format_age
from affair.vocab import SEVERITY

APP_FOLDER = "app"


@dataclass(frozen=True)
class AppSeries:
    """One application series of a host: where its page is and what colour it has."""

    host: str
    dataset: str
    instance: str
    label: str  # 'daq' or 'daq.eb1'
    colour: str
    why: str
    results: tuple  # RuleResult of the rules judging this series
    last_update: int

    @property
    def file(self):
        return app_page_file(self.host, self.label)

    @property
    def href(self):
        return quote(self.file)


def app_page_file(host, label):
    return f"{host}@{label}.html"


def application_series(status, config, now):
    """The AppSeries of every application dataset series ``status``'s host holds."""
    step = config.recorder.step
    stale_after = config.status.stale_steps * step
    found = []
    for series in status.snapshot.series:
        dataset = config.datasets.get(series.dataset)
        if dataset is None or not dataset.application:
            continue
        results = tuple(
            r
            for r in status.results
            if r.rule.dataset == series.dataset and r.instance in ("", series.instance)
        )
        problems = sorted((r for r in results if r.is_problem), key=lambda r: -SEVERITY[r.colour])
        silent = stale_after > 0 and now - series.last_update > stale_after
        if silent:
            colour = "grey"
            why = f"no sample for {format_age(now - series.last_update)}"
        elif problems:
            colour = problems[0].colour
            why = "; ".join(r.text for r in problems)
        else:
            colour, why = "green", "all rules pass" if results else "no rules judge it"
        found.append(
            AppSeries(
                host=status.host,
                dataset=series.dataset,
                instance=series.instance,
                label=series.label,
                colour=colour,
                why=why,
                results=results,
                last_update=series.last_update,
            )
        )
    return found
