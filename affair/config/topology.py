"""``[topology]``: the links a pipeline is expected to have, how the tree is drawn, link health.

The tree is derived from the links that reported (affair.outputs.topology);
this section adds what cannot be seen in the data: the links that must
exist (one that reports nothing is grey, dead), the roots drawn at the top
and the levels that order the daemons from top to bottom, and the
thresholds that colour a link:

* latency: the link's latest p95 against ``latency_yellow`` / ``latency_red``;
* loss: what the source says it sent minus what the target says it received,
  over the last ``loss_steps`` steps both ends reported, as a fraction of what
  was sent; beyond ``loss_tolerance`` it is red (messages still in flight at
  the edges of the window are why a tolerance is needed);
* errors: errors per message against ``error_yellow`` / ``error_red``;
* stale: no sample from either end for ``stale_steps`` steps: grey.
"""

from dataclasses import dataclass
from typing import Any

from affair.config.fields import (
    load_values,
    non_negative,
    number,
    positive,
    setting,
    string_list,
    whole,
)
from affair.errors import ConfigError, InvalidName
from affair.names import check_daemon

LINK_ARROW = "->"


def parse_link(text: str) -> tuple[str, str]:
    """``'tel01/r0dl1 -> tel01/dl1dl2'`` -> the two daemons, checked (ValueError otherwise)."""
    source, arrow, target = text.partition(LINK_ARROW)
    if not arrow:
        raise ValueError(f"no '{LINK_ARROW}' in {text!r}")
    source, target = source.strip(), target.strip()
    try:
        check_daemon(source)
        check_daemon(target)
    except InvalidName as error:
        raise ValueError(str(error)) from None
    if source == target:
        raise ValueError(f"a link from {source} to itself")
    return source, target


@dataclass(frozen=True)
class TopologyConfig:
    # (source, target) daemon pairs, 'host/daemon' each
    expected: tuple[tuple[str, str], ...] = setting(
        (), string_list, "a list of links like 'tel01/r0dl1 -> tel01/dl1dl2'"
    )
    # daemon names (the part after '/'), top of the tree first
    levels: tuple[str, ...] = setting((), string_list, "a list of daemon names, top level first")
    # daemons drawn at the very top: 'host/daemon', or a daemon name for that daemon on any host
    roots: tuple[str, ...] = setting((), string_list, "a list like ['camera', 'tel01/camera']")
    latency_yellow: float = setting(0.5, non_negative, "seconds of p95 latency, a number >= 0")
    latency_red: float = setting(2.0, non_negative, "seconds of p95 latency, a number >= 0")
    loss_tolerance: float = setting(0.01, number, "a fraction of the messages sent, 0 to 1")
    loss_steps: int = setting(6, positive, "a positive whole number of steps")
    error_yellow: float = setting(0.001, non_negative, "errors per message, a number >= 0")
    error_red: float = setting(0.01, non_negative, "errors per message, a number >= 0")
    stale_steps: int = setting(3, positive, "a positive whole number of steps")
    # a link silent for longer is no longer drawn, unless expected
    forget_steps: int = setting(360, positive, "a positive whole number of steps")
    # more daemons than this: each host's daemons are drawn as one node (its own page unfolds it)
    fold_above: int = setting(60, whole(0), "a whole number of daemons (0: always fold)")


def load_topology(raw: Any, path) -> TopologyConfig:
    values = load_values(TopologyConfig, raw, path, "topology")
    expected = []
    for index, text in enumerate(values["expected"]):
        try:
            expected.append(parse_link(text))
        except ValueError as error:
            raise ConfigError(
                path, f"topology.expected[{index}]", f"'host/daemon -> host/daemon' ({error})", text
            ) from None
    values["expected"] = tuple(dict.fromkeys(expected))
    if not 0 <= values["loss_tolerance"] <= 1:
        raise ConfigError(
            path, "topology.loss_tolerance", "a fraction from 0 to 1", values["loss_tolerance"]
        )
    for low, high in (("latency_yellow", "latency_red"), ("error_yellow", "error_red")):
        if values[high] < values[low]:
            raise ConfigError(
                path, f"topology.{high}", f"at least {low} ({values[low]:g})", values[high]
            )
    return TopologyConfig(**values)
