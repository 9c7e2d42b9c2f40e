"""The scoring jobs' queue, on SQLite and PostgreSQL: each job held by one
process at a time, claimed again when its holder stops, cancelled on ask."""
import threading
from datetime import timedelta


from housing_api.db import make_engine
from housing_api.jobs import queue

DAY = timedelta(days=1)
LEASE = timedelta(seconds=60)


def submit(engine, owner="address:10.0.0.1", **kwargs):
    return queue.submit(engine, owner, upload_bytes=100, keep=DAY, **kwargs)


def lapse(engine, job_id):
    """As if the holder had not reported for longer than any lease."""
    from sqlalchemy import update

    from housing_api.db import scoring_jobs

    with engine.begin() as connection:
        connection.execute(update(scoring_jobs).where(scoring_jobs.c.id == job_id)
                           .values(heartbeat_at=queue.utcnow() - 10 * LEASE))


def test_a_client_sees_only_its_own_jobs(engine):
    mine = submit(engine, version="v1", explain=True)
    submit(engine, owner="key:other")
    assert queue.get(engine, mine.id, "address:10.0.0.1") == mine
    assert queue.get(engine, mine.id, "key:other") is None
    assert [j.id for j in queue.owned_by(engine, "address:10.0.0.1")] == [mine.id]
    assert (mine.state, mine.version, mine.explain) == ("queued", "v1", True)


def test_jobs_are_claimed_oldest_first_and_once(engine):
    first, second = submit(engine), submit(engine)
    a = queue.claim(engine, "host:1", LEASE)
    b = queue.claim(engine, "host:2", LEASE)
    assert (a.id, b.id) == (first.id, second.id)
    assert (a.state, a.worker, a.attempts) == ("running", "host:1", 1)
    assert queue.claim(engine, "host:3", LEASE) is None


def test_processes_claiming_at_once_never_share_a_job(engine, database_url):
    ids = {submit(engine).id for _ in range(30)}
    claimed, errors = [], []

    def work(name):
        own = make_engine(database_url)
        try:
            while (job := queue.claim(own, name, LEASE)) is not None:
                claimed.append(job.id)
        except Exception as exc:  # a failed claim is the finding
            errors.append(exc)
        finally:
            own.dispose()
    threads = [threading.Thread(target=work, args=(f"host:{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(claimed) == sorted(ids)  # every job, each exactly once


def test_a_job_whose_holder_stops_is_claimed_again_from_the_start(engine):
    job = submit(engine)
    queue.claim(engine, "host:1", LEASE)
    assert queue.report(engine, job.id, "host:1", rows_done=500, rows_failed=2,
                        rows_total=1000)
    assert queue.claim(engine, "host:2", LEASE) is None  # its lease holds
    lapse(engine, job.id)
    again = queue.claim(engine, "host:2", LEASE)
    assert (again.id, again.worker, again.attempts) == (job.id, "host:2", 2)
    assert (again.rows_done, again.rows_failed, again.rows_total) == (0, 0, None)
    # The first holder, back from a pause, has lost it: it stops.
    assert not queue.report(engine, job.id, "host:1", rows_done=600, rows_failed=2)
    assert not queue.finish(engine, job.id, "host:1", queue.SUCCEEDED)
    assert queue.finish(engine, job.id, "host:2", queue.SUCCEEDED, rows_done=1000)
    done = queue.get(engine, job.id)
    assert (done.state, done.rows_done, done.worker) == ("succeeded", 1000, "host:2")


def test_a_job_that_kills_its_process_every_time_fails_in_the_end(engine):
    job = submit(engine)
    for attempt in range(queue.MAX_ATTEMPTS):
        assert queue.claim(engine, f"host:{attempt}", LEASE).id == job.id
        lapse(engine, job.id)
    assert queue.claim(engine, "host:last", LEASE) is None
    failed = queue.get(engine, job.id)
    assert failed.state == "failed"
    assert f"stopped {queue.MAX_ATTEMPTS} times" in failed.error


def test_a_queued_job_is_cancelled_at_once_a_running_one_at_its_next_report(
        engine):
    waiting, running = submit(engine), submit(engine)
    assert queue.claim(engine, "host:1", LEASE).id == waiting.id
    # (the first claimed: cancel the second before it runs)
    assert queue.cancel(engine, running.id, "address:10.0.0.1").state == "cancelled"
    assert queue.cancel(engine, waiting.id, "key:someone-else") is None
    asked = queue.cancel(engine, waiting.id, "address:10.0.0.1")
    assert (asked.state, asked.cancel_requested) == ("running", True)
    assert not queue.report(engine, waiting.id, "host:1", 10, 0)
    assert queue.cancelled_by_owner(engine, waiting.id, "host:1")
    assert queue.get(engine, waiting.id).state == "cancelled"
    assert queue.claim(engine, "host:2", LEASE) is None


def test_finished_jobs_past_their_keeping_time_are_listed_for_removal(engine):
    kept = submit(engine)
    old = queue.submit(engine, "address:10.0.0.1", upload_bytes=1,
                       keep=timedelta(seconds=-1))
    assert queue.expired(engine) == [old.id]
    assert queue.remove(engine, old.id) and queue.get(engine, old.id) is None
    assert queue.get(engine, kept.id) is not None
