"""Probes: small classes that turn a look at the machine into samples.

A probe is a class with

* ``name``: its dataset (a valid dataset name);
* ``variables``: the variable names ``sample()`` returns (valid rrdtool
  data-source names), checked when the probe is loaded;
* ``sample()``: ``{instance: {variable: value}}``, instance ``''`` for a
  dataset with one series; a value of None is unknown. It is called every
  interval on the collector's thread, so it must be quick (milliseconds).

It is created once, so it can keep the previous counters it needs; a
probe with a ``from_config(collector_config)`` class method is built with
it, any other with no arguments. Raise from ``sample()`` and the collector
logs it and carries on with the other probes.

To add one, write the class in any importable module and list it in the
config by ``module:Class``, then declare its dataset (the variables'
types and units) like any other::

    [collector]
    probes = ["system", "disks", "mysite.probes:TemperatureProbe"]

    [datasets.temperature.variables]
    cpu = { type = "GAUGE", unit = "°C", label = "CPU temperature" }

    # mysite/probes.py
    class TemperatureProbe:
        name = "temperature"
        variables = ("cpu",)

        def sample(self):
            with open("/sys/class/thermal/thermal_zone0/temp") as handle:
                return {"": {"cpu": int(handle.read()) / 1000}}
"""

import importlib

from affair.collectors.probes.disks import DisksProbe
from affair.collectors.probes.net import NetProbe
from affair.collectors.probes.processes import ProcessesProbe
from affair.collectors.probes.system import SystemProbe

from affair.names import is_valid

PROBES = {
    "system": SystemProbe,
    "disks": DisksProbe,
    "net": NetProbe,
    "processes": ProcessesProbe,
}


def probe_class(name):
    """The class for a built-in name or a ``module:Class`` reference; ValueError if neither."""
    if ":" not in name:
        try:
            return PROBES[name]
        except KeyError:
            raise ValueError(
                f"unknown probe {name!r}; built in: {', '.join(sorted(PROBES))}, "
                "or give your own as 'module:Class'"
            ) from None
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"probe {name!r}: cannot load it ({error})") from None
    check_probe_class(cls, name)
    return cls


def check_probe_class(cls, label):
    dataset = getattr(cls, "name", None)
    if not is_valid("dataset", dataset):
        raise ValueError(f"probe {label!r}: 'name' must be a valid dataset name, got {dataset!r}")
    variables = getattr(cls, "variables", None)
    if not isinstance(variables, tuple | list) or not variables:
        raise ValueError(f"probe {label!r}: 'variables' must be a list of variable names")
    for variable in variables:
        if not is_valid("variable", variable):
            raise ValueError(
                f"probe {label!r}: variable {variable!r} is not a valid name "
                "(1-19 of A-Z a-z 0-9 _)"
            )
    if not callable(getattr(cls, "sample", None)):
        raise ValueError(f"probe {label!r}: it needs a sample() method")


def make_probe(name, collector_config=None):
    cls = probe_class(name)
    if collector_config is not None and hasattr(cls, "from_config"):
        return cls.from_config(collector_config)
    return cls()
