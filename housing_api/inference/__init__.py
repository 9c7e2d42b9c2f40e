"""Inference: client columns in, prices and intervals out.

Feature sets, zipcode demographics, the predictor a model version becomes,
and the lean fast paths. Imports only the artifact formats below it; no
Flask, no files but what a version folder holds.
"""
