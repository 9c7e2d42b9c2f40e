"""``housing-api keys``: the admin API's key management, from the shell."""
import re

from conftest import HousingCliRunner
from housing_api.db import ProcessEngine
from housing_api.keys import KeyCache


def keys_runner(database_url):
    return HousingCliRunner({"DATABASE_URL": database_url})


def created(result):
    assert result.exit_code == 0, result.output
    key_id = result.stdout.split()[0]
    (secret,) = re.findall(r"^key: (hk_\S+)$", result.stdout, re.M)
    return key_id, secret


def test_create_list_rotate_revoke(database_url):
    runner = keys_runner(database_url)
    key_id, secret = created(runner.invoke(args=[
        "keys", "create", "--name", "agents-app", "--scope", "predict",
        "--scope", "sales", "--quota", "100 per second"]))
    listed = runner.invoke(args=["keys", "list"]).stdout
    assert f"{key_id}  {secret[:11]}...  agents-app  scopes=predict,sales  " \
           "quota=100 per second  active" in listed
    assert secret not in listed
    rotated = runner.invoke(args=["keys", "rotate", key_id])
    assert rotated.exit_code == 0 and f"old: {key_id}" in rotated.stdout
    new_id = re.search(r"^new: (\w+)", rotated.stdout, re.M).group(1)
    (new_secret,) = re.findall(r"^key: (hk_\S+)$", rotated.stdout, re.M)
    engines = ProcessEngine(database_url)
    cache = KeyCache(engines, interval=3600)
    try:
        assert cache.lookup(secret).revoked()
        assert cache.lookup(new_secret).id == new_id
        assert "revoked" in runner.invoke(args=["keys", "revoke", new_id]).stdout
        cache.refresh()
        assert cache.lookup(new_secret).revoked()
    finally:
        cache.close()
        engines.dispose()
    usage = runner.invoke(args=["keys", "usage", key_id, "--days", "7"])
    assert usage.exit_code == 0 and "total" in usage.stdout


def test_bad_requests_are_clear_failures(database_url, tmp_path):
    runner = keys_runner(database_url)
    for args, message in (
            (["keys", "create", "--name", "a", "--scope", "root"], "'root' is not one"),
            (["keys", "create", "--name", "a", "--scope", "predict",
              "--quota", "lots"], "not a rate limit"),
            (["keys", "revoke", "nope"], "no API key 'nope'"),
            (["keys", "usage", "nope"], "no API key 'nope'")):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output + result.stderr, args
    unmigrated = keys_runner(f"sqlite:///{tmp_path / 'empty.db'}")
    result = unmigrated.invoke(args=["keys", "list"])
    assert result.exit_code == 1
    assert "has `housing-api db upgrade` run?" in result.stderr
