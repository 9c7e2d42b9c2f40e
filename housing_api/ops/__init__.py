"""Operations without HTTP: the JSON log format, the service's own metrics,
the progress of long commands, and S3-compatible buckets (``buckets``, for
the object store and the jobs' files).

Imports nothing else of the package, and no Flask; ``web`` binds the log
and the metrics to requests.
"""
