"""The node side of affair: the collector process and its probes.

Imports only affair's light modules (wire, sender, config): never
matplotlib, jinja2, uproot or rrdtool, so a node pays a few MB for it.
"""
