"""The shipped configs, installed as package data (``affair.config.shipped``).

Read with ``importlib.resources``, so an installed affair finds them without
a checkout; no code lives here.
"""
