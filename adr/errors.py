"""Errors a user can fix; the command line prints them in one line, without a traceback."""


class AdrError(Exception):
    """Base of the user-facing errors."""


class ConfigError(AdrError, ValueError):
    """An option or parameter that cannot be used as given."""


class InputError(AdrError):
    """An input that cannot be read at all."""
