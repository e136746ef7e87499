"""Which hosts a list of patterns means: one rule for every place that takes host globs.

Status rules' ``hosts``, ``[site] groups``, ``[graphs.*] hosts``, ``affair
export --hosts`` and ``[recorder] curve_key_hosts`` all read a list the same way:

* a pattern is a shell glob (``gdc*``, ``ldc0[1-4]``, ``node?``) or a plain
  name, matched case-sensitively against the whole host name;
* a pattern starting with ``!`` excludes the hosts it matches (``!ldc05``);
  a ``!`` anywhere else is part of the glob (``ldc[!5]``);
* a host matches when it matches at least one positive pattern and no
  exclusion: ``["*", "!ldc05"]`` is every host but ldc05;
* a list of exclusions only means every host but those: ``["!ldc05"]`` is
  the same as ``["*", "!ldc05"]`` (it would otherwise match nothing, which
  nobody writes on purpose);
* an empty list matches no host. Where giving no patterns means "all" (a
  command line without ``--hosts``), the caller says so.

Host names cannot start with ``!`` (see :mod:`affair.names`), so the marker
never hides a real name.
"""

import fnmatch
import functools
import re

EXCLUDE = "!"


class HostMatcher:
    """A predicate on host names built from a list of patterns (see the module docstring)."""

    def __init__(self, patterns):
        self.patterns = tuple(patterns)
        include = [p for p in self.patterns if not p.startswith(EXCLUDE)]
        exclude = [p[len(EXCLUDE) :] for p in self.patterns if p.startswith(EXCLUDE)]
        if exclude and not include:
            include = ["*"]
        # One regular expression per side: the recorder asks once per sample.
        self._include = _any_of(include)
        self._exclude = _any_of(exclude)

    def __call__(self, host):
        if self._include is None or self._include.match(host) is None:
            return False
        return self._exclude is None or self._exclude.match(host) is None

    def select(self, hosts):
        """The matching ones of ``hosts``, in their order."""
        return [host for host in hosts if self(host)]

    def __repr__(self):
        return f"HostMatcher({list(self.patterns)!r})"


def host_matcher(patterns):
    """The HostMatcher of ``patterns``, built once per distinct list.

    Status and site ask it once per host and rule, with the config's lists.
    """
    return _cached_matcher(tuple(patterns))


@functools.lru_cache(maxsize=1024)
def _cached_matcher(patterns):
    return HostMatcher(patterns)


def _any_of(globs):
    if not globs:
        return None
    # fnmatch.translate anchors each glob at both ends (its regex ends in \Z).
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs))
