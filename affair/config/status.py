"""``[status]``: when a host turns grey, and the ``[[status.rules]]`` that colour it.

See config/affair.toml for the three kinds of rule; affair.outputs.status
applies them. A threshold rule may also take ``for`` (a duration the
condition must hold before the colour changes) and ``clear`` (hysteresis:
the level a value must fall back past before a colour is given up); any
threshold or stalled rule may take ``when`` ('dataset.variable' of the same
dataset: only rows where it is non-zero are judged, e.g. "while data taking").
"""

from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset, variable_ref
from affair.config.fields import (
    DURATION,
    HOST_GLOBS,
    computed,
    host_globs,
    load_values,
    number,
    one_of,
    seconds,
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
    "threshold": {"variable", "op", "yellow", "red", "for", "clear", "when"},
    "stalled": {"variable", "steps", "colour", "when"},
    "stale": {"dataset", "steps", "colour"},
}


CLEAR = "a number, or a table like { yellow = 75, red = 90 }"


def clear_levels(value):
    """``clear = 75`` or ``clear = { yellow = 75, red = 90 }`` as ``{colour: level}``.

    A bare number is the level for the rule's lower colour (yellow when it has
    one): the place :func:`_rule` knows which that is, so here it is kept as ``{'': n}``.
    """
    if isinstance(value, dict):
        if not value or any(k not in ("yellow", "red") for k in value):
            raise ValueError
        return {colour: number(level) for colour, level in value.items()}
    return {"": number(value)}


def _duration_text(seconds_):
    if seconds_ % 3600 == 0:
        return f"{seconds_ // 3600} h"
    if seconds_ % 60 == 0:
        return f"{seconds_ // 60} min"
    return f"{seconds_} s"


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
    # {'yellow': level, 'red': level}: where a colour, once given, is given up (hysteresis).
    clear: dict | None = setting(None, clear_levels, CLEAR)
    # The variable (of the same dataset) that must be non-zero for a row to be judged.
    when: str = setting("", string, "a 'dataset.variable' of the rule's own dataset")
    # TOML's ``for``, a Python keyword: seconds the condition must hold (0: the latest row).
    hold: int = computed("the rule's 'for' key", default=0)

    @property
    def name(self):
        """How the rule reads on a page: its label, or e.g. 'system.cpu_user > 80 / 95'."""
        if self.label:
            return self.label
        if self.kind == "threshold":
            limits = " / ".join(f"{v:g}" for v in (self.yellow, self.red) if v is not None)
            held = f" for {_duration_text(self.hold)}" if self.hold else ""
            return f"{self.dataset}.{self.variable} {self.op} {limits}{held}"
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
        entry = dict(entry)
        hold = entry.pop("for", None)  # a Python keyword: not a field name
        rule = load_values(StatusRule, entry, path, key)
        if hold is not None:
            entry["for"] = hold  # for the kind's allowed-keys check below
            try:
                rule["hold"] = seconds(hold)
            except (ValueError, TypeError):
                raise ConfigError(path, f"{key}.for", DURATION, hold) from None
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
        clear = _clear(rule["clear"], yellow, red, op, path, f"{key}.clear")
    else:
        yellow = red = op = clear = None
    when = ""
    if rule["when"]:
        when_dataset, when = variable_ref(rule["when"], datasets, path, f"{key}.when")
        if when_dataset != dataset:
            raise ConfigError(
                path,
                f"{key}.when",
                f"a variable of the rule's own dataset {dataset!r}",
                rule["when"],
            )
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
        clear=clear,
        when=when,
        hold=rule.get("hold", 0),
    )


def _clear(clear, yellow, red, op, path, key):
    """The clear levels checked against their limits: each on the good side of its own."""
    if clear is None:
        return None
    if "" in clear:
        clear = {"yellow" if yellow is not None else "red": clear[""]}
    upward = op in (">", ">=")
    for colour, level in clear.items():
        limit = yellow if colour == "yellow" else red
        if limit is None:
            raise ConfigError(path, f"{key}.{colour}", f"a {colour!r} limit to clear from")
        if (level >= limit) if upward else (level <= limit):
            side = "below" if upward else "above"
            raise ConfigError(
                path, f"{key}.{colour}", f"a level {side} {colour} ({limit:g}) for '{op}'", level
            )
    return clear
