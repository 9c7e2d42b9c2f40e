"""HTTP: blueprints, schemas, the error shape, request ids, access log, limits.

The only layer that imports Flask (with ``create_app`` and ``extensions``).
Views translate between HTTP and the layers below; those raise domain
errors without status codes, and the views map them.
"""
