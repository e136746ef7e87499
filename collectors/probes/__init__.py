"""Probes: small classes that turn a look at the machine into samples.

A probe has a ``name`` (its dataset), and ``sample()`` returning
``{instance: {variable: value}}`` (instance '' for a single series). It is
created once, so it can keep the previous counters it needs.
"""

from collectors.probes.system import SystemProbe

PROBES = {"system": SystemProbe}


def make_probe(name):
    try:
        return PROBES[name]()
    except KeyError:
        raise ValueError(f"unknown probe {name!r}; known: {', '.join(sorted(PROBES))}") from None
