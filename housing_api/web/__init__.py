"""HTTP: blueprints, schemas, the error shape, request ids, access log, limits.

The only layer that imports Flask (with ``app`` and ``extensions``); it may
import every layer below it. Views translate between HTTP and those layers,
which raise domain errors without status codes; the views map them.
"""
