"""The plotter: PNG graphs of the RRDs, per node, aggregated and overlaid (``affair plot``).

Stages, one module each: :mod:`~affair.outputs.plot.plan` (which graphs exist, which
are due, which are this shard's), :mod:`~affair.outputs.plot.data` (rows at the
window's resolution, aggregates), :mod:`~affair.outputs.plot.chart` (what a graph
shows), :mod:`~affair.outputs.plot.render` (pixels, with :mod:`~affair.outputs.plot.text`,
:mod:`~affair.outputs.plot.scale`, :mod:`~affair.outputs.plot.timeaxis`),
:mod:`~affair.outputs.plot.png` (encoding, atomic writes) and
:mod:`~affair.outputs.plot.run` (a pass over K processes).

Importing this package imports nothing; :func:`~affair.outputs.plot.run.run_plot`
loads matplotlib only when a graph is due.
"""
