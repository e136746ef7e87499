"""``[jobs]``: batch jobs (Slurm) indexed by their nodes and run.

Where the jobs come from (a periodic ``sacct``), how Slurm node names become
affair host names, which variables the per-job metrics read, and the
thresholds of the flags a job page shows.
"""

from dataclasses import dataclass
from typing import Any

from affair.config.datasets import Dataset
from affair.config.fields import (
    DURATION,
    TRUE_OR_FALSE,
    boolean,
    interval,
    load_values,
    non_negative,
    number,
    positive,
    seconds,
    setting,
    string,
    string_list,
    table,
)
from affair.errors import ConfigError


def fraction(value):
    value = number(value)
    if not 0 <= value <= 1:
        raise ValueError
    return value


def string_table(value):
    value = table(value)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError
    return dict(value)


@dataclass(frozen=True)
class JobsConfig:
    # The scheduler runs this (argv, no shell) for jobs changed since its last run; the
    # output is read as `affair jobs import` reads a file. Empty: not run.
    sacct: tuple[str, ...] = setting((), string_list, "a command as a list of strings, or []")
    sacct_interval: int = setting(300, interval, "a duration like '5min', or 0 for never")
    # Slurm node name -> affair host name: explicit entries first, then the suffix
    # is stripped, then (short_names) everything from the first dot.
    host_map: dict[str, str] = setting({}, string_table, "a table like { 'n001-ib' = 'n001' }")
    host_suffix: str = setting("", string, "a suffix to strip from node names, like '-ib'")
    short_names: bool = setting(True, boolean, TRUE_OR_FALSE)
    # What the metrics read (journal dataset and its variables).
    dataset: str = setting("system", string, "a dataset name")
    cpu: tuple[str, ...] = setting(
        ("cpu_user", "cpu_system"), string_list, "a list of the dataset's CPU % variables (summed)"
    )
    memory: str = setting("mem_used", string, "the dataset's memory-used variable, or ''")
    swap: str = setting("swap_used", string, "the dataset's swap-used variable, or ''")
    network: tuple[str, ...] = setting(
        ("net_in", "net_out"), string_list, "a list of the dataset's network byte counters"
    )
    disk: tuple[str, ...] = setting(
        ("disk_read", "disk_write"), string_list, "a list of the dataset's disk byte counters"
    )
    # Flags.
    idle_cpu: float = setting(5.0, non_negative, "a CPU % under which a node is idle")
    idle_fraction: float = setting(
        0.8, fraction, "a fraction of the run (0 to 1) a node must be idle to be flagged"
    )
    imbalance: float = setting(1.5, number, "a ratio of the busiest node's CPU to the mean, >= 1")
    swap_bytes: float = setting(
        64 * 2**20, non_negative, "bytes of swap used above which a job is flagged swapping"
    )
    short_steps: int = setting(6, positive, "a whole number of recorder steps")
    # Pages.
    keep_days: int = setting(30, positive, "a whole number of days")
    index_jobs: int = setting(500, positive, "how many recent jobs the index lists")
    host_recent: int = setting(86400 * 7, seconds, DURATION)


def load_jobs(raw: Any, datasets: dict[str, Dataset], path) -> JobsConfig:
    values = load_values(JobsConfig, raw, path, "jobs")
    if values["imbalance"] < 1:
        raise ConfigError(path, "jobs.imbalance", "a ratio >= 1", values["imbalance"])
    # Checked when the file names them: the defaults name the shipped `system` dataset
    # and its variables, and a config without them gets metrics that say what is missing.
    dataset = datasets.get(values["dataset"])
    if dataset is None and "dataset" in raw:
        raise ConfigError(
            path, "jobs.dataset", "a dataset declared under [datasets]", values["dataset"]
        )
    for key in ("cpu", "memory", "swap", "network", "disk"):
        if dataset is None or key not in raw:
            continue
        names = values[key] if isinstance(values[key], tuple) else (values[key],)
        for name in names:
            if name and name not in dataset.variables:  # '': not measured
                raise ConfigError(
                    path, f"jobs.{key}", f"variables of dataset {values['dataset']!r}", name
                )
    return JobsConfig(**values)
