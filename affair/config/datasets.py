"""``[datasets]``: the declared datasets and their variables (the RRDs' data sources)."""

from dataclasses import dataclass
from typing import Any

from affair.config.fields import (
    TRUE_OR_FALSE,
    boolean,
    check_name_at,
    computed,
    load_values,
    one_of,
    optional_number,
    setting,
    string,
    table,
)
from affair.errors import ConfigError
from affair.vocab import VARIABLE_TYPES


@dataclass(frozen=True)
class Variable:
    name: str = computed("its key under [datasets.<name>.variables]")
    type: str = setting("GAUGE", one_of(*VARIABLE_TYPES), "one of GAUGE, COUNTER, DERIVE, ABSOLUTE")
    unit: str = setting("", string, "a unit string like '%' or 'B/s'")
    label: str = setting("", string, "a human-readable label")
    min: float | None = setting(None, optional_number, "a number or 'U'")
    max: float | None = setting(None, optional_number, "a number or 'U'")
    # Which panel of its dataset's default graph it is drawn in, with others of the same
    # panel and unit (e.g. "disk", "network"); "" groups it by unit alone.
    panel: str = setting("", string, "a panel name like 'network'")
    # A number that names something (a run number): printed whole, never '375 k'.
    identifier: bool = setting(False, boolean, TRUE_OR_FALSE)

    @property
    def title(self):
        return self.label or self.name

    @property
    def is_flag(self):
        """A 0/1 state ("data taking", "link up"): its own small panel by default."""
        return self.unit == "" and self.min == 0 and self.max == 1

    @property
    def panel_name(self):
        """The panel it is drawn in: its ``panel``, else 'flags'/'identifiers' by meaning."""
        if self.panel:
            return self.panel
        if self.identifier:
            return "identifiers"
        return "flags" if self.is_flag else ""


@dataclass(frozen=True)
class Dataset:
    name: str = computed("its key under [datasets]")
    description: str = setting("", string, "a string")
    variables: dict[str, Variable] = setting({}, table, "a table of variables")
    # An application's own dataset (published with affair.collectors.client): it gets a
    # page per host and instance, linked from the top of the host's page.
    application: bool = setting(False, boolean, TRUE_OR_FALSE)


def load_datasets(raw: Any, path) -> dict[str, Dataset]:
    if not isinstance(raw, dict):
        raise ConfigError(path, "datasets", "a table of datasets", raw)
    datasets = {}
    for name, entry in raw.items():
        key = f"datasets.{name}"
        check_name_at(path, key, "dataset", name)
        if not isinstance(entry, dict):
            raise ConfigError(path, key, "a table with 'variables'", entry)
        values = load_values(Dataset, entry, path, key)
        values["variables"] = {
            var_name: _variable(var_name, var_table, path, f"{key}.variables.{var_name}")
            for var_name, var_table in values["variables"].items()
        }
        datasets[name] = Dataset(name=name, **values)
    return datasets


def _variable(name, raw, path, key):
    check_name_at(path, key, "variable", name)
    if not isinstance(raw, dict):
        raise ConfigError(path, key, "a table like { type = 'GAUGE', unit = '%' }", raw)
    values = load_values(Variable, raw, path, key)
    if values["min"] is not None and values["max"] is not None and values["min"] >= values["max"]:
        raise ConfigError(path, f"{key}.max", f"more than min ({values['min']})", values["max"])
    return Variable(name=name, **values)


def variable_ref(ref, datasets, path, key):
    """'dataset.variable' -> ('dataset', 'variable'), both declared, or a ConfigError."""
    dataset_name, _, variable = str(ref).partition(".")
    dataset = datasets.get(dataset_name)
    if dataset is None:
        expected = (
            f"'dataset.variable' with a dataset declared under [datasets] ({', '.join(datasets)})"
        )
        raise ConfigError(path, key, expected, ref)
    if variable not in dataset.variables:
        expected = f"a variable of dataset {dataset_name!r} ({', '.join(dataset.variables)})"
        raise ConfigError(path, key, expected, ref)
    return dataset_name, variable
