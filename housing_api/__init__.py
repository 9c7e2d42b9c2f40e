"""Sound Realty's house-price service.

Layers, top down (``make lint`` holds them): ``cli``; ``web`` (HTTP, the
only Flask code besides ``app`` and ``extensions``); ``serving`` and
``training``; ``store``; ``inference``; ``formats`` and ``ops``.
"""


def __getattr__(name):
    # ``create_app`` is imported on first use, so that the CLI, training
    # jobs and the layers below ``web`` start without importing Flask.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
