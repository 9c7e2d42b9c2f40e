"""The model commands on an object store (HOUSING_MODEL_STORE=s3://...),
and ``housing-api models copy`` between a folder and a bucket."""
import pytest

from conftest import DATA_DIR, HousingCliRunner
from housing_api.store import ModelStore, open_store
from model_files import publish_copy


@pytest.fixture
def s3_runner(s3_store, tmp_path):
    """The CLI as configured for the bucket, with a cache of its own."""
    return HousingCliRunner({"MODEL_STORE": s3_store.location,
                             "MODEL_DIR": tmp_path / "cli-cache",
                             "DATA_DIR": DATA_DIR})


def models(runner, *args):
    return runner.invoke(args=["models", *args])


def test_the_model_commands_work_on_a_bucket(s3_runner, s3_store):
    first, second = s3_store.current(), publish_copy(s3_store)
    listed = models(s3_runner, "list")
    assert listed.exit_code == 0, listed.output
    assert [line.split("  R2")[0] for line in listed.stdout.splitlines()] \
        == [f"* {first}", f"  {second}"]
    assert models(s3_runner, "activate", second).stdout == f"active: {second}\n"
    assert s3_store.current() == second
    assert models(s3_runner, "rollback").stdout == f"active: {first}\n"
    deleted = models(s3_runner, "delete", second)
    assert deleted.stdout == f"deleted: {second}\n"
    assert s3_store.list_versions() == [first]
    refused = models(s3_runner, "delete", first)
    assert refused.exit_code == 1 and "is active" in refused.stderr


def test_an_empty_bucket_says_so(bucket_url, tmp_path):
    runner = HousingCliRunner({"MODEL_STORE": bucket_url,
                               "MODEL_DIR": tmp_path / "cache"})
    result = models(runner, "list")
    assert result.exit_code == 0
    assert result.stdout == f"no model versions in {bucket_url}\n"


def test_copy_moves_versions_into_a_bucket_and_back(trained_store, bucket_url,
                                                    tmp_path):
    runner = HousingCliRunner({"MODEL_DIR": tmp_path / "cache"})
    folder = ModelStore(trained_store)
    (version,) = folder.list_versions()
    result = models(runner, "copy", "--from", str(trained_store), "--to",
                    bucket_url, "--activate")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{version}: copied to {bucket_url}",
        f"copied 1 version(s) to {bucket_url}; active: {version}"]
    bucket = open_store(bucket_url, tmp_path / "reader")
    assert bucket.current() == version
    again = models(runner, "copy", "--from", str(trained_store), "--to",
                   bucket_url)
    assert again.stdout.splitlines()[0] == f"{version}: already in {bucket_url}"
    back = tmp_path / "back"
    result = models(runner, "copy", "--from", bucket_url, "--to", str(back),
                    "--version", version)
    assert result.exit_code == 0, result.output
    assert ModelStore(back).load(version).version == version


@pytest.mark.parametrize("args, message", [
    (["--from", "model", "--to", "gs://bucket/models"],
     "a model store is a folder or an s3://bucket/prefix URL"),
    (["--from", "model", "--to", "s3://"], "is not an s3://bucket/prefix URL"),
    (["--from", "{trained}", "--to", "{bucket}", "--version", "nope"],
     "no model version 'nope'"),
])
def test_copy_refuses_what_it_cannot_do(trained_store, bucket_url, tmp_path,
                                        args, message):
    runner = HousingCliRunner({"MODEL_DIR": tmp_path / "cache"})
    args = [a.format(trained=trained_store, bucket=bucket_url) for a in args]
    result = models(runner, "copy", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_malformed_store_url_is_a_clear_failure(tmp_path):
    runner = HousingCliRunner({"MODEL_STORE": "s3:/no-bucket",
                               "MODEL_DIR": tmp_path / "cache"})
    result = models(runner, "list")
    assert result.exit_code == 1
    assert "HOUSING_MODEL_STORE='s3:/no-bucket': expected empty" in result.stderr
