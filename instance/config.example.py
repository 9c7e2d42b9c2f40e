# Copy to instance/config.py (git-ignored) and edit. Every key of
# housing_api/config.py can be set here or as a HOUSING_<KEY> variable.

# ADMIN_TOKENS = "change-me-to-a-long-random-string"
# MODEL_DIR = "/srv/housing/model"
# MAX_BATCH_ROWS = 10_000
