"""Run the ``[[criteria]]``: each a read-only query whose rows are violations.

:func:`run_criteria` runs every criterion over the raw archive's views
(affair.outputs.query: the day files attached read-only, ``query_only``, an
authorizer that allows reading only, a time limit per query). A criterion
whose query fails at run time is reported as failed with its error, logged
once, and the others still run.

Each violation names its subject (see affair.config.criteria): a host, a
link or a daemon. :func:`host_violations` gives the violations into results the
host pages and ``affair status`` show beside the ``[status]`` rules, and
:func:`apply_to_links` colours the topology's links; a daemon's violation
colours the links in and out of it.

``affair check`` prints :func:`report` and exits 1 when a red criterion has
violations (or failed to run).
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from affair.errors import AffairError, QueryError
from affair.outputs.query import execute, format_cell, open_journal
from affair.vocab import SEVERITY

log = logging.getLogger(__name__)

ROWS_SHOWN = 20  # violations printed per criterion by affair check
# Criteria run with every site pass: they read the day files holding the last day
# only, so a pass does not attach (and a careless query scan) a week of archive.
HISTORY_SECONDS = 86400


@dataclass(frozen=True)
class Violation:
    kind: str  # host, link or daemon
    subject: str | tuple  # host or daemon name, or (source, target)
    why: str

    @property
    def text(self) -> str:
        return self.why


@dataclass
class CriterionResult:
    criterion: Any  # affair.config.Criterion
    violations: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def colour(self) -> str:
        """The criterion's colour when it has violations or failed; green otherwise."""
        return self.criterion.colour if (self.violations or self.error) else "green"

    @property
    def summary(self) -> str:
        if self.error:
            return f"could not run: {self.error}"
        if not self.violations:
            return "passes"
        count = len(self.violations)
        return f"{count} violation{'s' if count != 1 else ''}"


def run_criteria(
    config, data_dir=None, clock=time.monotonic, wall=time.time
) -> list[CriterionResult]:
    """Run every criterion once over the last day's files; never raises for one's failure."""
    if not config.criteria:
        return []
    if data_dir is not None:
        config = config.with_overrides(data_dir=str(data_dir))
    results = []
    try:
        journal = open_journal(config, start=wall() - HISTORY_SECONDS)
    except (AffairError, OSError) as error:
        for criterion in config.criteria:
            results.append(CriterionResult(criterion, error=f"the archive: {error}"))
        log.error("criteria: cannot open the raw archive: %s", error)
        return results
    try:
        for criterion in config.criteria:
            results.append(_run_one(journal, criterion, config.query.timeout, clock))
    finally:
        journal.connection.close()
    return results


def _run_one(journal, criterion, timeout, clock):
    started = clock()
    result = CriterionResult(criterion)
    try:
        rows = execute(journal, criterion.sql, (), timeout)
        result.columns = [str(name).lower() for name in next(rows)]
        seen = set()
        for row in rows:
            result.rows.append(row)
            for violation in violations_of(result.columns, row):
                if violation not in seen:  # a subject named by several rows counts once per why
                    seen.add(violation)
                    result.violations.append(violation)
    except (QueryError, StopIteration) as error:
        result.error = str(error) or "no result"
        result.violations = []
        log.error("criterion %s failed: %s", criterion.name, result.error)
    result.seconds = clock() - started
    return result


def violations_of(columns, row) -> list[Violation]:
    """What one row is about: a host, a link (``link`` or ``source``+``target``), a daemon."""
    cells = dict(zip(columns, row, strict=False))
    why = cells.get("why")
    if why is None:
        others = [f"{c}={format_cell(v)}" for c, v in cells.items() if c not in _SUBJECTS]
        why = ", ".join(others) or "violates the criterion"
    why = str(why)
    found = []
    if cells.get("host") is not None:
        found.append(Violation("host", str(cells["host"]), why))
    link = cells.get("link")
    if link is not None:
        source, arrow, target = str(link).partition("->")
        if arrow:
            found.append(Violation("link", (source.strip(), target.strip()), why))
    elif cells.get("source") is not None and cells.get("target") is not None:
        found.append(Violation("link", (str(cells["source"]), str(cells["target"])), why))
    if cells.get("daemon") is not None:
        found.append(Violation("daemon", str(cells["daemon"]), why))
    return found


_SUBJECTS = ("host", "link", "source", "target", "daemon", "why")


@dataclass(frozen=True)
class CriterionRule:
    """A criterion in the shape of a status rule, so host pages list it with the rules."""

    label: str
    name: str


def host_violations(results) -> dict[str, list[tuple[CriterionRule, str, str]]]:
    """``{host: [(rule, colour, why), ...]}`` of the violations naming a host.

    affair.outputs.status makes RuleResults of them (:func:`~affair.outputs.status.with_criteria`).
    """
    found: dict[str, list] = {}
    for result in results:
        rule = CriterionRule(result.criterion.label, f"criterion {result.criterion.name}")
        for violation in result.violations:
            if violation.kind == "host":
                found.setdefault(violation.subject, []).append(
                    (rule, result.criterion.colour, violation.why)
                )
    return found


def apply_to_links(topology, results) -> None:
    """Colour the links (and the links of daemons) that criteria name; add the reasons."""
    links = {(link.source, link.target): link for link in topology.links}
    for result in results:
        colour = result.criterion.colour
        for violation in result.violations:
            if violation.kind == "link":
                targets = [links[violation.subject]] if violation.subject in links else []
            elif violation.kind == "daemon" and violation.subject in topology.daemons:
                daemon = topology.daemons[violation.subject]
                targets = daemon.links_in + daemon.links_out
            else:
                continue
            for link in targets:
                if SEVERITY[colour] > SEVERITY[link.colour]:
                    link.colour = colour
                link.reasons.insert(0, f"{result.criterion.name}: {violation.why}")


def report(results) -> tuple[list[str], int]:
    """``affair check``'s lines and exit code (1 when a red criterion fails or cannot run)."""
    lines = []
    for result in results:
        criterion = result.criterion
        lines.append(f"{result.colour.upper():6}  {criterion.name}: {result.summary}")
        if criterion.description:
            lines.append(f"        {criterion.description}")
        if result.rows:
            widths = [len(c) for c in result.columns]
            shown = [[format_cell(v) for v in row] for row in result.rows[:ROWS_SHOWN]]
            for row in shown:
                widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
            lines.append(
                "        "
                + "  ".join(
                    c.ljust(w) for c, w in zip(result.columns, widths, strict=False)
                ).rstrip()
            )
            for row in shown:
                lines.append(
                    "        "
                    + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
                )
            if len(result.rows) > ROWS_SHOWN:
                lines.append(f"        ... and {len(result.rows) - ROWS_SHOWN} more rows")
    failed = [r for r in results if r.colour != "green"]
    lines.append(
        f"{len(results)} criteria: {len(results) - len(failed)} pass, {len(failed)} fail"
        if results
        else "no [[criteria]] in the config"
    )
    code = 1 if any(r.colour == "red" for r in results) else 0
    return lines, code
