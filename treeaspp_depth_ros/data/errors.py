"""The data package's one exception, so that callers need not know which reader failed."""


class DataError(ValueError):
    """Unusable data (missing file, corrupt image, mismatched counts); the message names it."""
