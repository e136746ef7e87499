"""Ingest: receive, authenticate, validate and journal samples, then write them to RRDs.

The recorder (ZeroMQ and Graphite listeners) acknowledges a sample once it is
in the journal; the writer process consumes the journal behind a watermark.
Uses :mod:`affair.storage`; never the outputs.
"""
