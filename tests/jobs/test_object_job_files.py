"""Scoring jobs' files in a bucket (JOBS_DIR=s3://...), for replicas that
share no disk: the same job, the same result, nothing half-kept."""
import csv
import io
import os
from contextlib import closing

import pytest

from buckets import s3_client
from housing_api.jobs import queue
from housing_api.jobs.files import (
    ERRORS, RESULT, JobFiles, ObjectJobFiles, UploadTooLarge,
)
from test_runner import homes_file, runner_for, submit


@pytest.fixture
def bucket_files(bucket_url, tmp_path):
    return ObjectJobFiles(bucket_url.rsplit("/", 1)[0] + "/jobs",
                          tmp_path / "scratch")


def stored_keys(files):
    listed = s3_client(os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(
        Bucket=files.bucket.name)
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def rows_of(file) -> list[dict]:
    with closing(file):
        return list(csv.DictReader(io.StringIO(file.read().decode(), newline="")))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_in_a_bucket_scores_as_one_in_a_folder(
        engine, bucket_files, model_dir, tmp_path):
    source = homes_file(tmp_path / "homes.csv", copies=2)
    folder_files = JobFiles(tmp_path / "jobs")
    results = {}
    for files in (folder_files, bucket_files):
        job = submit(engine, files, source)
        assert files.header(job.id)[:3] == ["bedrooms", "bathrooms", "sqft_living"]
        done = runner_for(engine, model_dir, files, chunk_rows=64).run_once()
        assert (done.id, done.state, done.rows_done, done.rows_failed) == (
            job.id, "succeeded", 201, 1)
        results[files.location] = [
            [{k: v for k, v in r.items() if k != "prediction_id"}
             for r in rows_of(files.open(job.id, name))]
            for name in (RESULT, ERRORS)]
    assert results[folder_files.location] == results[bucket_files.location]
    assert len(results[bucket_files.location][0]) == 200
    assert not any((tmp_path / "scratch").iterdir())  # local copies gone
    bucket_files.remove(job.id)
    assert stored_keys(bucket_files) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failed_job_leaves_no_result_in_the_bucket(engine, bucket_files,
                                                     model_dir, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("bedrooms\n3\n")  # a header the service cannot score
    job = submit(engine, bucket_files, source)
    done = runner_for(engine, model_dir, bucket_files).run_once()
    assert done.state == queue.FAILED
    upload = bucket_files.bucket.key(job.id, "upload.csv")
    assert stored_keys(bucket_files) == [upload]
    with pytest.raises(FileNotFoundError):
        bucket_files.open(job.id, RESULT)


def test_an_upload_over_the_limit_keeps_nothing(bucket_files):
    blocks = (b"x" * (1 << 20) for _ in range(12))
    with pytest.raises(UploadTooLarge):
        bucket_files.save_upload("a" * 32, blocks, limit=10 << 20)
    client = s3_client(os.environ["AWS_ENDPOINT_URL"])
    assert stored_keys(bucket_files) == []
    assert client.list_multipart_uploads(
        Bucket=bucket_files.bucket.name).get("Uploads", []) == []


def test_an_upload_in_parts_is_kept_whole(bucket_files):
    data = b"".join(bytes([i % 251]) * 1000 for i in range(20_000))  # 20 MB
    blocks = (data[i:i + 65536] for i in range(0, len(data), 65536))
    assert bucket_files.save_upload("b" * 32, blocks, limit=len(data)) == len(data)
    with bucket_files.local_upload("b" * 32) as path:
        assert path.read_bytes() == data
