"""``housing-api``: train, evaluate and score; manage versions, keys and the database.

Its own click group, not Flask's: ``--help`` imports only click and the
command modules, and each command imports what it needs when it runs.
Flask's and the extensions' commands (``routes``, ``openapi``, ``limiter``)
stay reachable through ``flask --app housing_api``. The top layer: may
import anything below it.
"""
import click

from .db import db_group
from .evaluate import evaluate_command, search_command
from .keys import keys_group
from .models import models_group
from .monitor import monitor_command
from .rollout import rollout_group
from .score import score_command
from .smoke import smoke_command
from .train import train_command
from .worker import worker_command


@click.group(name="housing-api",
             context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Sound Realty house-price service: training and operations."""


for _command in (train_command, smoke_command, models_group, db_group,
                 keys_group, monitor_command, evaluate_command, search_command,
                 rollout_group, score_command, worker_command):
    main.add_command(_command)
