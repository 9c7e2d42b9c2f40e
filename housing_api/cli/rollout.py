"""``housing-api rollout``: try a version on live traffic before it is active."""
import click

from .context import config, fail, model_store


@click.group("rollout")
def rollout_group():
    """Start, show, promote or abort a shadow or canary rollout."""


def _on_store(settings, operation: str, *args):
    """Call the store's ``operation``; a refusal ends the command cleanly."""
    from ..store import ModelStoreError

    try:
        return getattr(model_store(settings), operation)(*args)
    except (ModelStoreError, OSError) as exc:
        fail(str(exc))


def _watch_note(settings) -> str:
    return (f"servers on this store follow within "
            f"{settings['MODEL_WATCH_INTERVAL']:g} s (a rolling reload)")


@rollout_group.command("start")
@click.argument("version")
@click.option("--mode", type=click.Choice(["shadow", "canary"]), required=True,
              help="shadow: the challenger estimates beside the active version, "
                   "clients see the active version's answers; canary: a share "
                   "of the clients get the challenger's.")
@click.option("--share", type=float,
              help="The canary's share of clients, above 0 and at most 1.")
def start_command(version, mode, share):
    """Try VERSION beside the active version."""
    settings = config()
    rollout = _on_store(settings, "start_rollout", version, mode, share)
    click.echo(f"{_describe(rollout)}; {_watch_note(settings)}")


@rollout_group.command("share")
@click.argument("share", type=float)
def share_command(share):
    """Change the running canary's share of clients (SHARE: above 0, at most 1)."""
    settings = config()
    rollout = _on_store(settings, "set_rollout_share", share)
    click.echo(f"{_describe(rollout)}; {_watch_note(settings)}")


@rollout_group.command("status")
def status_command():
    """Show the rollout in progress, and how its two versions compare."""
    settings = config()
    rollout = _on_store(settings, "rollout")
    ended = _on_store(settings, "ended_rollout")
    if rollout is None:
        click.echo("no rollout in progress")
    else:
        click.echo(_describe(rollout))
        for line in _judgement(settings, rollout):
            click.echo(line)
    if ended is not None:
        click.echo(f"last ended: {_describe(ended.rollout)}; {ended.outcome} at "
                   f"{ended.ended_at}" + (f": {ended.reason}" if ended.reason
                                          else ""))


def _judgement(settings, rollout) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError

    from ..db import make_engine
    from ..monitoring.rollouts import AbortRule, judge

    reference = _on_store(settings, "metadata", rollout.challenger).get(
        "training_distribution")
    rule = AbortRule.from_config(settings)
    engine = make_engine(settings["DATABASE_URL"])
    try:
        found = judge(engine, rollout, reference, rule)
    except SQLAlchemyError as exc:
        fail(f"cannot read the prediction log: {getattr(exc, 'orig', None) or exc}")
    finally:
        engine.dispose()
    return [*_comparison(found), *_drift_lines(found["challenger_drift"]),
            _abort_line(found["auto_abort"])]


def _drift_lines(found) -> list[str]:
    if found is None:
        return ["challenger's drift: unknown (trained without a training "
                "distribution)"]
    worst = sorted((f for f in found["features"] if f["psi"] is not None),
                   key=lambda f: -f["psi"])[:3]
    return [f"challenger's drift on {found['rows']:,} estimates: "
            f"{found['verdict']}" + ("" if not worst else " (" + ", ".join(
                f"{f['name']} {f['psi']:.3f}" for f in worst) + ")")]


def _abort_line(automatic) -> str:
    if not automatic["enabled"]:
        return "automatic abort: off (ROLLOUT_AUTO_ABORT)"
    rule = (f"automatic abort: on, once the canary's MAPE is worse by more "
            f"than {automatic['margin']:.2%} on {automatic['min_sales']:,} "
            "sales or more")
    return f"{rule}; due: {automatic['due']}" if automatic["due"] else rule


def _comparison(found) -> list[str]:
    ratio, paired = found["price_ratio"], found["sales"]
    lines = [f"homes priced by both: {ratio['n']:,}"]
    if ratio["n"]:
        q = ratio["quantiles"]
        lines.append(f"challenger / champion price: median {q['p50']:.3f}, "
                     f"90% between {q['p5']:.3f} and {q['p95']:.3f}")
    if not paired["n"]:
        return lines + ["no sales reported for them yet"]
    lines.append(f"on {paired['n']:,} reported sales (challenger - champion, "
                 "95% bootstrap interval):")
    for name, value, change in (("MAPE", "{:.2%}", "{:+.2%}"),
                                ("MAE", "${:,.0f}", "{:+,.0f} USD")):
        d = paired[name.lower()]
        lines.append(
            f"  {name} {value.format(paired['challenger'][name.lower()])} vs "
            f"{value.format(paired['champion'][name.lower()])}: "
            f"{change.format(d['difference'])} [{change.format(d['low'])}, "
            f"{change.format(d['high'])}]")
    return lines


@rollout_group.command("promote")
def promote_command():
    """Make the challenger the active version, ending the rollout."""
    settings = config()
    rollout = _on_store(settings, "promote_rollout")
    click.echo(f"active: {rollout.challenger}; {_watch_note(settings)}")


@rollout_group.command("abort")
def abort_command():
    """End the rollout; the active version stays."""
    settings = config()
    rollout = _on_store(settings, "abort_rollout")
    click.echo(f"ended the {rollout.mode} of {rollout.challenger}; "
               f"{rollout.champion} answers everyone; {_watch_note(settings)}")


def _describe(rollout) -> str:
    who = ("every estimate, answered by the active version" if
           rollout.mode == "shadow" else f"{rollout.share:.0%} of clients")
    return (f"{rollout.mode} of {rollout.challenger} against "
            f"{rollout.champion} since {rollout.started_at}: {who}")
