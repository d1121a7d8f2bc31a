"""The errors the core raises; each front end maps them to its own answer once."""


class PhotoflowError(Exception):
    """Base of every error Photoflow reports to a person; ``reason`` is one clear line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Invalid(PhotoflowError):
    """The input is wrong: an unsupported or corrupt file, a bad value."""


class TooLarge(PhotoflowError):
    """The input is larger than Photoflow accepts (a decompression bomb, too many pixels or bytes)."""


class NotFound(PhotoflowError):
    """No such thing, or the viewer may not know it exists."""


class Forbidden(PhotoflowError):
    """The viewer is known but may not do this."""


class Conflict(PhotoflowError):
    """The action clashes with what exists (a duplicate user name, the last admin)."""


class Unavailable(PhotoflowError):
    """Something Photoflow needs is missing or broken: exiftool, the database, a writable datastore."""


class ConfigError(Unavailable):
    """A configuration value is wrong; the reason names the variable."""
