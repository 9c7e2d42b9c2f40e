"""The one error of this layer."""


class ArtifactError(ValueError):
    """The artifact cannot be loaded safely or does not fit its metadata."""
