"""Operations without HTTP: the JSON log format and the service's own metrics.

Imports nothing else of the package, and no Flask; ``web`` binds both to
requests.
"""
