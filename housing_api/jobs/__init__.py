"""Scoring jobs: whole files of homes, scored outside the web workers.

``queue``: the jobs' rows in the service's database, claimed by job
processes with a lease; ``files``: their uploads and results, in a shared
folder or a bucket. Above ``serving`` (it runs ``serving.scoring``)
and ``monitoring`` (its estimates go to the prediction log); below
``web``, which submits and reports them. No Flask.
"""
