"""Training: fit, search, evaluate and report models; import a pickle; jobs.

Reads the CSVs of the data folder and stores each model as a new version
through ``store``. May import ``store``, ``inference`` and ``formats``;
never ``web`` or ``serving``, and no Flask.
"""
