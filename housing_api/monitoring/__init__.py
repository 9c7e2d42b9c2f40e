"""Monitoring: the prediction log, reported sales, live accuracy and drift.

Reads and writes the database through ``db``; imports ``inference`` for the
client columns. Independent of ``serving`` and ``training``; no Flask.
"""
