"""affair: A Flexible Fabric and Application Information Recorder.

Kept empty of imports on purpose: collectors import ``affair.collectors.wire`` and
``affair.collectors.sender`` on every node, and must not pay for matplotlib, rrdtool or
uproot to do so.
"""

__version__ = "0.1.0"
