"""Gunicorn settings and hooks for the house-price service.

Any setting can be overridden with GUNICORN_CMD_ARGS, e.g.
``GUNICORN_CMD_ARGS="--bind 127.0.0.1:9000"``.
"""
import gc
import logging
import os
import signal
import threading

from gunicorn import glogging

# One native thread per worker: the workers are the parallelism. Default
# thread pools (one per core in every worker) cut throughput ~30x here.
# Set before the app (and numpy) is imported by preload_app.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

# Keep the model's pages shared between workers: no cyclic GC in the master
# (it would touch every object header), frozen before fork, on in workers.
gc.disable()

wsgi_app = "wsgi:app"
bind = "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "sync"
preload_app = True
timeout = 30
graceful_timeout = 30
keepalive = 5
# No gunicornc control socket (Gunicorn >= 25): Gunicorn stops and restarts
# its asyncio thread around every fork, which doubled the time of a model
# swap under load (2 -> 4.5 s measured), and its default path is shared by
# every instance of the user. Operators use the admin API and signals.
control_socket_disable = True


class JsonLogger(glogging.Logger):
    """Gunicorn's own lines in the app's format: one JSON object per line
    (``HOUSING_LOG_FORMAT=text`` for local development).

    Not ``logconfig_dict``: Gunicorn re-applies it on every HUP, and its
    defaults would replace the root logger's handler, the app's, too.
    """

    def setup(self, cfg):
        super().setup(cfg)
        from housing_api.ops.logs import formatter

        fmt = formatter(os.environ.get("HOUSING_LOG_FORMAT", "json"))
        for handler in self.error_log.handlers + self.access_log.handlers:
            if getattr(handler, "_gunicorn", False):
                handler.setFormatter(fmt)


logger_class = JsonLogger

log = logging.getLogger("gunicorn.error")


def on_exit(server):
    # The job processes when_ready started: each gives its job back.
    processes = getattr(server, "housing_job_processes", None)
    if processes is not None:
        processes.stop()


def _state(server):
    return server.app.wsgi().extensions["housing"]


def when_ready(server):
    # The scoring jobs' processes (JOB_WORKERS; 0 where a Deployment of
    # their own runs them), kept running until the master stops.
    config = server.app.wsgi().config
    if int(config.get("JOB_WORKERS", 0)) > 0:
        from housing_api.jobs.processes import JobProcesses

        # On the arbiter: a HUP reads this file again, and a module global
        # would be a new one, forgetting the processes on_exit must stop.
        server.housing_job_processes = JobProcesses(config["JOB_WORKERS"])
        server.housing_job_processes.start()
    # Poll the store's pointer, so that a CLI activation or one made by
    # another replica sharing the store rolls this master's workers too.
    interval = float(server.app.wsgi().config["MODEL_WATCH_INTERVAL"])
    if interval > 0:
        from housing_api.serving import PointerWatcher

        watcher = PointerWatcher(_state(server))
        threading.Thread(
            target=watcher.run, name="model-watcher", daemon=True,
            args=(interval, lambda: os.kill(server.pid, signal.SIGHUP)),
        ).start()


def on_reload(server):
    # HUP with preload_app does not re-import the app: load the new version
    # here, in the master, so the workers forked next inherit it. Anything
    # escaping this hook would kill the server, so every failure keeps the
    # old model and is logged.
    try:
        state = _state(server)
        old = state.version
        changed = state.reload()
        log.info("model reload: %s", f"{old} -> {state.version}" if changed
                 else f"already on {old}")
    except Exception:
        log.exception("model reload failed; the loaded model keeps serving")
    # Release the previous model now; the master runs with GC disabled.
    gc.unfreeze()
    gc.collect()


def pre_fork(server, worker):
    gc.freeze()


def post_fork(server, worker):
    gc.enable()
    # The admin API signals this master to roll every worker (never pkill).
    _state(server).master_pid = server.pid
    # The prediction log's pool and writer thread, in this worker: a pool
    # or a thread made in the master would not survive the fork intact.
    extensions = server.app.wsgi().extensions
    if extensions.get("housing_log") is not None:
        extensions["housing_log"].start()
    # The live accuracy and drift gauges: one worker (a file lock decides)
    # queries the database every MONITORING_REFRESH_INTERVAL seconds.
    if extensions.get("housing_gauges") is not None:
        extensions["housing_gauges"].start()
    # This worker's intervals, adapted to the sales reported since.
    if extensions.get("housing_adaptation") is not None:
        extensions["housing_adaptation"].start()
    # This worker's copy of the API keys, and its refresher thread.
    if extensions.get("housing_keys") is not None:
        extensions["housing_keys"].start()
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(1)
    pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    if any(n != 1 for n in pools.values()):
        log.warning("worker %s: native thread pools not limited: %s",
                    worker.pid, pools)


def worker_exit(server, worker):
    # Graceful stops and every HUP end old workers here: write what their
    # prediction log still holds (to the database, or to its spool).
    extensions = server.app.wsgi().extensions
    if extensions.get("housing_log") is not None:
        extensions["housing_log"].close()
    # The API keys' usage counted since the last refresh.
    if extensions.get("housing_keys") is not None:
        extensions["housing_keys"].close()


def child_exit(server, worker):
    # Drop the dead worker's live gauges (housing_model_info) from /metrics;
    # its counters and histograms stay, so totals survive rolling reloads.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
