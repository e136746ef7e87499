"""Storage: the journal (the raw archive), RRD files, rrdcached and the archive ladder.

Used by ingest and the outputs; imports neither.
"""
