"""The plotter: PNG graphs of the RRDs, per node, aggregated and overlaid (``affair plot``).

Stages, one module each: :mod:`~affair.outputs.plot.plan` (which graphs exist, which
are due, which are this shard's), :mod:`~affair.outputs.plot.data` (rows at the
window's resolution, aggregates), :mod:`~affair.outputs.plot.chart` (what a graph
shows), :mod:`~affair.outputs.plot.render` (pixels, with :mod:`~affair.outputs.plot.text`,
:mod:`~affair.outputs.plot.scale`, :mod:`~affair.outputs.plot.timeaxis`),
:mod:`~affair.outputs.plot.png` (encoding, atomic writes) and
:mod:`~affair.outputs.plot.run` (a pass over K processes).

Importing this package does not import matplotlib; :func:`run_plot` does.
"""


def run_plot(config, data_dir=None, out_dir=None, all_graphs=False, shard=(0, 1), workers=None):
    """Draw the due graphs (all with ``all_graphs``) of shard ``(i, N)``: see :mod:`affair.outputs.plot.run`."""
    from affair.outputs.plot.run import run_plot as run  # noqa: PLC0415 - matplotlib loads on use

    return run(config, data_dir, out_dir, all_graphs, shard, workers)


def __getattr__(name):
    if name == "PlotSummary":
        from affair.outputs.plot.run import PlotSummary  # noqa: PLC0415

        return PlotSummary
    raise AttributeError(name)
