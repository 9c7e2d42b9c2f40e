"""What the prediction log costs: the service with it off, on SQLite (the
default) and on PostgreSQL, in interleaved rounds, for one home and a batch."""
import json
import uuid
from contextlib import ExitStack, contextmanager

from common import BOOSTED, say
from load import short, wrk
from processes import call, gunicorn
from stores import store_copy

#: Issue 12's targets: the log may cost at most 5% of /v1/predict's req/s
#: and 10% of a 1,000-row batch's rows/s.
MIN_PREDICT_RATIO = 0.95
MIN_BATCH_RATIO = 0.9
OFF = "log off"


@contextmanager
def postgres_database(server_url: str | None):
    """A new database on ``server_url`` (dropped after), or None if unreachable."""
    if not server_url:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT",
                          connect_args={"connect_timeout": 3})
    name = f"housing_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        say(f"bench: no PostgreSQL at {server_url} ({type(exc.orig).__name__}); "
            "its rows are left out")
        admin.dispose()
        yield None
        return
    try:
        yield make_url(server_url).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_prediction_log(args, ctx, model: str = BOOSTED) -> dict:
    """Rounds of /v1/predict (c=16) and of the batch endpoint, each store in turn.

    More rounds than elsewhere: the ratios are 5% and 10% targets, and one
    10-second run on a shared machine can be 10% off.
    """
    results = {"predict": [], "batch": [], "stores": []}
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_database(args.postgres))
        sides = {OFF: {"HOUSING_PREDICTION_LOG": "false"},
                 "log in SQLite (default)": {}}
        if pg:
            sides["log in PostgreSQL"] = {"HOUSING_DATABASE_URL": pg}
        servers = {}
        for label, env in sides.items():
            store = store_copy(ctx["source"], ctx["versions"], model, ctx["work"])
            servers[label] = stack.enter_context(gunicorn(
                label, store, workers=args.workers, env=env,
                expect_version=ctx["versions"][model]))
        results["stores"] = list(servers)
        body = json.loads(ctx["batch"].read_text())
        for label, server in servers.items():
            status, _ = call(server.url, "POST", "/v1/predict/batch", body)
            if status != 200:
                raise RuntimeError(f"{label}: batch -> {status}")
            wrk(args, server.url, "/v1/predict", ctx["single"], 16, args.warmup)
        rounds = args.log_rounds
        for r in range(rounds):
            # The order turns round every other round: a machine that gets
            # slower (or faster) during a round favours no store.
            order = list(servers.items())[::-1 if r % 2 else 1]
            row = {}
            for label, server in order:
                row[label] = wrk(args, server.url, "/v1/predict", ctx["single"],
                                 16, args.duration)
                say(f"  log {model} predict round {r + 1}/{rounds} {label}: "
                    f"{short(row[label])}")
            results["predict"].append(row)
            row = {}
            for label, server in order:
                run = wrk(args, server.url, "/v1/predict/batch", ctx["batch"],
                          args.workers, args.duration)
                run["rows_per_s"] = run["rps"] * args.batch_rows
                row[label] = run
                say(f"  log {model} batch round {r + 1}/{rounds} {label}: "
                    f"{run['rows_per_s']:,.0f} rows/s")
            results["batch"].append(row)
    return results
