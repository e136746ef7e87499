"""Templates, CSS and JS of the pages, installed as package data (``affair.outputs.web_static``).

Read with ``importlib.resources`` (jinja2's PackageLoader), so an installed
affair builds pages without a checkout; no code lives here.
"""
