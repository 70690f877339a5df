"""The two kinds of user-facing errors; each message is one line that says what was wrong and what is
accepted. The command-line entry points print them without a traceback."""


class ConfigError(ValueError):
    """A configuration key or value that cannot be used."""


class RunError(RuntimeError):
    """A run that cannot start or continue as asked."""
