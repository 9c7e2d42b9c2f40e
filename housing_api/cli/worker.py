"""``housing-api worker``: run scoring jobs (POST /v1/jobs) until stopped."""
import click

from .context import config, model_store


@click.command("worker")
@click.option("--once", is_flag=True,
              help="Run the jobs waiting now, then exit (no waiting for more).")
@click.option("--poll", type=float, default=1.0, show_default=True,
              help="Seconds between looks at the queue when it is empty.")
def worker_command(once, poll):
    """Claim scoring jobs from the database and score them, one at a time.

    Run as many as the cores allow, on any machine that shares the database
    and JOBS_DIR. SIGTERM (or Ctrl-C) gives the running job back to the
    queue at its next chunk and exits; a worker killed outright loses its
    job for JOB_LEASE_SECONDS, then another one starts it over.
    """
    import signal
    from datetime import timedelta

    from ..db import make_engine
    from ..jobs.files import job_files
    from ..jobs.runner import Runner
    from ..monitoring.log import PredictionLog
    from ..ops import logs
    from .score import _checks

    settings = config()
    logs.configure(settings["LOG_FORMAT"], settings["LOG_LEVEL"])
    url = settings["DATABASE_URL"]
    engine = make_engine(url)
    prediction_log = PredictionLog(
        url, settings["PREDICTION_LOG_SPOOL_DIR"],
        flush_interval=settings["PREDICTION_LOG_FLUSH_INTERVAL"],
        buffer_size=settings["PREDICTION_LOG_BUFFER"],
    ) if settings["PREDICTION_LOG"] else None
    store = model_store(settings)
    files = job_files(settings["JOBS_DIR"], settings["JOBS_SCRATCH_DIR"])
    runner = Runner(engine, store, files, _checks, prediction_log=prediction_log,
                    lease=timedelta(seconds=settings["JOB_LEASE_SECONDS"]),
                    adaptation_step=settings["INTERVAL_ADAPTATION_STEP"]
                    if settings["PREDICTION_LOG"] else 0.0)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop.set())
    try:
        if once:
            runner.purge()
            while not runner.stop.is_set() and runner.run_once() is not None:
                pass
        else:
            runner.run_forever(poll=poll)
    finally:
        if prediction_log is not None:
            prediction_log.close()
        engine.dispose()
