"""Default configuration.

Loaded first by :func:`housing_api.create_app`; ``instance/config.py``, then
``HOUSING_*`` environment variables, then the test mapping override it.
Relative paths are resolved against the working directory when the app is
created.
"""

#: Model store: ``versions/<version>/``, ``CURRENT``, ``.lock``; with an
#: object store (``MODEL_STORE``), this machine's cache of its versions.
MODEL_DIR = "model"
#: Where the versions live: empty for the folder ``MODEL_DIR``, or
#: ``s3://bucket/prefix`` for an S3-compatible bucket shared by replicas
#: with no shared disk. Credentials, region and endpoint come from the
#: usual AWS settings (``AWS_ACCESS_KEY_ID``..., ``AWS_ENDPOINT_URL`` for
#: MinIO and the like), or the pod's service account.
MODEL_STORE = ""
#: The three CSVs (sales, demographics, future examples) used for training.
DATA_DIR = "data"

#: Largest request body in bytes; larger bodies get 413.
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
#: Most homes accepted in one batch request.
MAX_BATCH_ROWS = 10_000
#: Most homes in one batch with ``explain=true`` (each costs milliseconds).
MAX_EXPLAINED_ROWS = 1_000
#: Seconds between checks of ``model/CURRENT`` by the Gunicorn master.
MODEL_WATCH_INTERVAL = 3.0

#: Scoring jobs (POST /v1/jobs): their files (upload, result, refused rows)
#: live here, on storage every web and job process shares (empty:
#: ``instance/jobs``; in Kubernetes, the store's volume, or
#: ``s3://bucket/prefix`` beside an object store).
JOBS_DIR = ""
#: With ``JOBS_DIR`` in a bucket (``s3://bucket/prefix``, where replicas
#: share no disk), the local folder a job process works in (empty:
#: ``instance/jobs-scratch``): room for an upload and its result.
JOBS_SCRATCH_DIR = ""
#: Largest CSV a job takes, in bytes (413 above).
MAX_JOB_UPLOAD_BYTES = 1024 ** 3
#: Hours a job, its upload and its result are kept after it was submitted.
JOB_RETENTION_HOURS = 72
#: Job processes (``housing-api worker``) each Gunicorn master keeps running
#: beside its web workers; 0 where they run on their own (Kubernetes).
JOB_WORKERS = 1
#: Seconds a job process may go without reporting before another one
#: claims its job again (each chunk of 10,000 homes reports).
JOB_LEASE_SECONDS = 60

#: Training jobs (POST /admin/models/train) running at once per model store;
#: each takes a core for up to minutes. More are refused with 409; 0 turns
#: training through the API off.
MAX_TRAINING_JOBS = 2

#: Bearer tokens accepted by the admin API, comma-separated or a list: the
#: bootstrap, to create the first API key with the ``admin`` scope
#: (``POST /admin/keys``), which the admin API accepts as well. With no
#: token and no admin key the admin API is disabled (403), never open.
ADMIN_TOKENS = ""

#: Refuse /v1 requests without an API key (401). False: a request may come
#: without one (limited per address), but a key sent must be valid.
REQUIRE_API_KEY = False
#: The quota of a key made without one (flask-limiter notation).
API_KEY_QUOTA = "50 per second; 2000 per minute"
#: Seconds between each worker's re-reads of the keys: a key made, revoked
#: or rotated elsewhere takes effect on every worker within this time.
API_KEY_REFRESH_INTERVAL = 5.0
#: Unknown keys one address may send before it is refused (429) unheard.
API_KEY_FAILURE_LIMIT = "20 per minute"

API_TITLE = "Sound Realty house-price API"
API_VERSION = "v1"
OPENAPI_VERSION = "3.0.3"
OPENAPI_URL_PREFIX = "/"
OPENAPI_JSON_PATH = "openapi.json"
OPENAPI_SWAGGER_UI_PATH = "/docs"
# Served by the service itself (web/docs_assets.py): no CDN.
OPENAPI_SWAGGER_UI_URL = "/docs/assets/swagger-ui-dist/"
OPENAPI_REDOC_PATH = "/redoc"
OPENAPI_REDOC_URL = "/docs/assets/redoc/bundles/redoc.standalone.js"
# No call to Swagger's public validator from the docs page.
OPENAPI_SWAGGER_UI_CONFIG = {"validatorUrl": None}

#: flask-limiter storage. ``memory://`` counts per worker process (N workers
#: allow N times the limit) and resets on every reload: a single-process
#: default only. Production: ``redis://host:6379/0``, shared by every
#: worker and replica.
RATELIMIT_STORAGE_URI = "memory://"
#: Hops of trusted proxies in front of the service (``ProxyFix``); 0 means
#: clients connect directly and X-Forwarded-For is ignored.
PROXY_COUNT = 0
#: ``json`` (one object per line) or ``text`` for local development.
LOG_FORMAT = "json"
LOG_LEVEL = "INFO"
#: Per-address limits on /v1 for requests without an API key (flask-limiter
#: notation; ``;`` separates several). A key has its own quota.
PREDICT_RATE_LIMIT = "50 per second; 2000 per minute"
ADMIN_RATE_LIMIT = "30 per minute"
#: Set to false to switch rate limiting off (benchmarks).
RATELIMIT_ENABLED = True
#: Comma-separated networks allowed to read /metrics; empty allows all.
METRICS_ALLOWED_NETWORKS = ""
#: Serve through housing_api.lean: the same predictions, bit for bit, without
#: the libraries' per-call overhead. False serves through the libraries'
#: own predict (the fallback, and the baseline in the benchmark).
LEAN_INFERENCE = True
#: With LEAN_INFERENCE, serve LightGBM versions through their compiled trees
#: (the store's ``compiled/`` folder, made at training time for this CPU);
#: False keeps LightGBM's C API. Versions without compiled trees use it too.
COMPILED_TREES = True

#: The database of the prediction log and the reported sales (SQLAlchemy
#: URL). Empty: SQLite in the instance folder (``instance/housing.db``).
#: Production: ``postgresql+psycopg://user:password@host:5432/housing``.
DATABASE_URL = ""
#: Record every answered estimate (and give it a ``prediction_id``).
PREDICTION_LOG = True
#: Seconds between a worker's writes (what gathered, in one transaction).
PREDICTION_LOG_FLUSH_INTERVAL = 1.0
#: Records a worker queues for its writer; beyond, they spill to the spool.
PREDICTION_LOG_BUFFER = 10_000
#: Where records wait while the database is away (empty: ``instance/spool``).
PREDICTION_LOG_SPOOL_DIR = ""
#: Days of estimates (and their reported sales) ``housing-api db purge`` keeps.
PREDICTION_LOG_RETENTION_DAYS = 365
#: Seconds between refreshes of the live accuracy and drift gauges on
#: /metrics (one worker queries the database; 0 turns them off).
MONITORING_REFRESH_INTERVAL = 60.0

#: Intervals of estimates "now" adapt to the sales reported for them
#: (inference/adaptive.py): a sale above its upper bound moves that band's
#: upper bound out by 0.9 times this many log units, every other sale in by
#: 0.1 times (0.005: 0.45% and 0.05%); the lower bound likewise; 0 turns
#: it off. Each worker reads the counts every INTERVAL_ADAPTATION_REFRESH s.
INTERVAL_ADAPTATION_STEP = 0.005
INTERVAL_ADAPTATION_REFRESH = 60.0

#: End a canary by itself when, on at least ROLLOUT_ABORT_MIN_SALES reported
#: sales of the homes both versions priced, its MAPE is worse than the
#: active version's by more than ROLLOUT_ABORT_MARGIN (a fraction: 0.01 is
#: one point) and the 95% interval of the difference lies above zero.
#: Judged at each refresh of the live gauges (MONITORING_REFRESH_INTERVAL);
#: logged, counted (housing_rollout_auto_aborts_total) and alerted.
ROLLOUT_AUTO_ABORT = False
ROLLOUT_ABORT_MARGIN = 0.01
ROLLOUT_ABORT_MIN_SALES = 200

#: Signs the pages' session cookie (their API key). Empty: one is made and
#: kept in the instance folder; replicas that share none set one value.
SECRET_KEY = ""  # nosec B105 - empty: made per instance (web/security.py)
SESSION_COOKIE_SAMESITE = "Lax"
#: True behind TLS: the cookie then never travels over plain HTTP.
SESSION_COOKIE_SECURE = False
