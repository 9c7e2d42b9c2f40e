"""What the commands share: the configuration, the store, a clean failure."""
import click


def config():
    """The configuration ``create_app`` would use, without building the app."""
    from ..settings import ConfigError, configured_app

    try:
        return configured_app().config
    except ConfigError as exc:
        fail(str(exc))


def model_store(config):
    """The model store the configuration names."""
    from ..store import ModelStore

    return ModelStore(config["MODEL_DIR"])


def fail(message: str):
    """Stop the command with ``message`` and exit status 1."""
    raise click.ClickException(message)
