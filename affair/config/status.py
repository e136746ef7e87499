"""``[status]``: when a host turns grey, and the ``[[status.rules]]`` that colour it.

See config/affair.toml for the three kinds of rule; affair.outputs.status
applies them.
"""

from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset, variable_ref
from affair.config.fields import (
    HOST_GLOBS,
    host_globs,
    load_values,
    number,
    one_of,
    setting,
    string,
    table_list,
    whole,
)
from affair.errors import ConfigError
from affair.vocab import RULE_COLOURS

RULE_KINDS = ("threshold", "stalled", "stale")
RULE_OPS = (">", ">=", "<", "<=")
# Which keys each kind takes (besides kind, hosts, label); any other is an error.
RULE_KEYS = {
    "threshold": {"variable", "op", "yellow", "red"},
    "stalled": {"variable", "steps", "colour"},
    "stale": {"dataset", "steps", "colour"},
}


@dataclass(frozen=True)
class StatusRule:
    """One ``[[status.rules]]`` entry, as the file gives it and then resolved by :func:`_rule`."""

    kind: str = setting("threshold", one_of(*RULE_KINDS), f"one of {', '.join(RULE_KINDS)}")
    dataset: str = setting("", string, "a dataset declared under [datasets]")
    # The file's 'dataset.variable'; once loaded, the variable alone ('' for a 'stale' rule,
    # which watches a whole dataset).
    variable: str = setting("", string, "a 'dataset.variable' declared under [datasets]")
    op: str = setting(
        None, one_of(*RULE_OPS), f"one of {' '.join(RULE_OPS)}"
    )  # '' unless threshold
    yellow: float | None = setting(None, number, "a number")
    red: float | None = setting(None, number, "a number")
    steps: int = setting(None, whole(1), "a positive whole number of steps")  # None: 6
    # None: grey for a 'stale' rule, red otherwise.
    colour: str = setting(None, one_of(*RULE_COLOURS), "'yellow', 'red' or 'grey'")
    hosts: tuple[str, ...] = setting(("*",), host_globs, HOST_GLOBS)
    label: str = setting("", string, "a short description like 'disk nearly full'")

    @property
    def name(self):
        """How the rule reads on a page: its label, or e.g. 'system.cpu_user > 80 / 95'."""
        if self.label:
            return self.label
        if self.kind == "threshold":
            limits = " / ".join(f"{v:g}" for v in (self.yellow, self.red) if v is not None)
            return f"{self.dataset}.{self.variable} {self.op} {limits}"
        if self.kind == "stalled":
            return f"{self.dataset}.{self.variable} not increasing for {self.steps} steps"
        return f"{self.dataset}: no sample for {self.steps} steps"


@dataclass(frozen=True)
class StatusConfig:
    stale_steps: int = setting(
        6, whole(0), "a whole number of steps >= 0 (0: hosts never turn grey)"
    )
    rules: tuple[StatusRule, ...] = setting((), table_list, "a list of [[status.rules]] tables")


def load_status(raw: Any, datasets: dict[str, Dataset], path) -> StatusConfig:
    values = load_values(StatusConfig, raw, path, "status")
    rules = []
    for index, entry in enumerate(values["rules"]):
        key = f"status.rules[{index}]"
        rule = load_values(StatusRule, entry, path, key)
        allowed = RULE_KEYS[rule["kind"]] | {"kind", "hosts", "label"}
        for given in entry:
            if given not in allowed:
                raise ConfigError(
                    path,
                    f"{key}.{given}",
                    f"no {given!r} in a {rule['kind']!r} rule (it takes: {', '.join(sorted(allowed))})",
                )
        rules.append(_rule(rule, datasets, path, key))
    return StatusConfig(stale_steps=values["stale_steps"], rules=tuple(rules))


def _rule(rule, datasets, path, key):
    kind = rule["kind"]
    if kind == "stale":
        if rule["dataset"] not in datasets:
            raise ConfigError(
                path, f"{key}.dataset", "a dataset declared under [datasets]", rule["dataset"]
            )
        dataset, variable = rule["dataset"], ""
    else:
        dataset, variable = variable_ref(rule["variable"], datasets, path, f"{key}.variable")
    if kind == "threshold":
        yellow, red, op = rule["yellow"], rule["red"], rule["op"] or ">"
        if yellow is None and red is None:
            raise ConfigError(path, f"{key}.red", "a 'yellow' or 'red' threshold (or both)")
        if yellow is not None and red is not None:
            upward = op in (">", ">=")
            if (red <= yellow) if upward else (red >= yellow):
                side = "above" if upward else "below"
                raise ConfigError(
                    path, f"{key}.red", f"a threshold {side} yellow ({yellow:g}) for '{op}'", red
                )
    else:
        yellow = red = op = None
    return StatusRule(
        kind=kind,
        dataset=dataset,
        variable=variable,
        op=op or "",
        yellow=yellow,
        red=red,
        steps=rule["steps"] or 6,
        colour=rule["colour"] or ("grey" if kind == "stale" else "red"),
        hosts=rule["hosts"],
        label=rule["label"],
    )
