"""Outputs: what is made from stored data: status, pages, graphs, ROOT exports, SQL, the schedule.

Reads :mod:`affair.storage`; never ingest.
"""
