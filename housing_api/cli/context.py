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
    from ..settings import model_store

    return model_store(config)


def fail(message: str):
    """Stop the command with ``message`` and exit status 1."""
    raise click.ClickException(message)
