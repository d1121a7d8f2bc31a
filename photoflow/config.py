"""Configuration: one frozen `Config` built from the environment, the only reader of `os.environ`."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from photoflow.errors import ConfigError

SECRET_FILE = "secret"


@dataclass(frozen=True)
class Config:
    """Everything Photoflow needs to know about where it runs."""

    datastore: Path
    database: str
    secret: str = field(repr=False)
    url_scheme: str = "http"
    host: str = "127.0.0.1"
    port: int = 8080
    # Import worker processes; the decode and resize work is CPU-bound, so one per core.
    workers: int = os.cpu_count() or 1
    threads: int = 16
    exiftool: str = "exiftool"
    exiftool_timeout: float = 30.0
    # The address people reach Photoflow at (share links shown in the console); default scheme://host:port.
    public_url: str = ""
    # Proxies (addresses or networks) whose X-Forwarded-For/-Proto/-Host are believed; from anyone
    # else those headers are dropped, since a client could write them to pose as another address/host.
    trusted_proxies: tuple[str, ...] = ()
    # Seconds that requests in flight (an upload, say) get to finish after SIGTERM.
    shutdown_timeout: int = 30
    # Behind nginx: the internal location that maps to the datastore (e.g. /_datastore/); Photoflow
    # checks access, then answers with X-Accel-Redirect and nginx sends the bytes.
    accel_redirect: str = ""
    # Served under a sub-path (https://example.org/photos/): "/photos"; empty at the root of its host.
    url_prefix: str = ""

    @property
    def base_url(self) -> str:
        """The public address, without a trailing slash."""
        here = f"{self.url_scheme}://{self.host}:{self.port}{self.url_prefix}"
        return (self.public_url or here).rstrip("/")

    @property
    def is_postgres(self) -> bool:
        """True when DATABASE names a PostgreSQL server rather than a SQLite file."""
        return self.database.startswith(("postgres://", "postgresql://"))

    def env(self) -> dict[str, str]:
        """The environment variables that rebuild this configuration in a child process."""
        return {
            "DATASTORE": str(self.datastore),
            "DATABASE": self.database,
            "SECRET": self.secret,
            "URL_SCHEME": self.url_scheme,
            "HOST": self.host,
            "PORT": str(self.port),
            "WORKERS": str(self.workers),
            "EXIFTOOL": self.exiftool,
            "PUBLIC_URL": self.public_url,
            "TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "SHUTDOWN_TIMEOUT": str(self.shutdown_timeout),
            "ACCEL_REDIRECT": self.accel_redirect,
            "URL_PREFIX": self.url_prefix,
        }


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from `environ` (default: the process environment), checking each value.

    Creates the datastore folder and the generated secret on first use, so a fresh install needs no
    configuration. Every bad value raises `ConfigError` with one line naming the variable.
    """
    env = os.environ if environ is None else environ
    datastore = _datastore(env.get("DATASTORE") or "datastore")
    database = env.get("DATABASE") or str(datastore / "photoflow.db")
    if not database.startswith(("postgres://", "postgresql://")):
        database = str(Path(database).expanduser().absolute())
        parent = Path(database).parent
        if not parent.is_dir():
            raise ConfigError(f"DATABASE={database}: the folder {parent} does not exist")
    scheme = env.get("URL_SCHEME") or "http"
    if scheme not in ("http", "https"):
        raise ConfigError(f"URL_SCHEME={scheme!r}: must be http or https")
    return Config(
        datastore=datastore,
        database=database,
        secret=env.get("SECRET") or _stored_secret(datastore),
        url_scheme=scheme,
        host=env.get("HOST") or "127.0.0.1",
        port=_int(env, "PORT", 8080, 1, 65535),
        workers=_int(env, "WORKERS", os.cpu_count() or 1, 1, 256),
        threads=_int(env, "THREADS", 16, 1, 1024),
        exiftool=env.get("EXIFTOOL") or "exiftool",
        public_url=_public_url(env.get("PUBLIC_URL") or ""),
        trusted_proxies=_networks(env.get("TRUSTED_PROXIES") or ""),
        shutdown_timeout=_int(env, "SHUTDOWN_TIMEOUT", 30, 1, 3600),
        accel_redirect=_accel(env.get("ACCEL_REDIRECT") or ""),
        url_prefix=_prefix(env.get("URL_PREFIX") or ""),
    )


def _prefix(raw: str) -> str:
    value = raw.rstrip("/")
    if value and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", value):
        raise ConfigError(f"URL_PREFIX={raw!r}: must be a path like /photos")
    return value


def _accel(raw: str) -> str:
    if raw and not (raw.startswith("/") and raw.endswith("/") and " " not in raw):
        raise ConfigError(f"ACCEL_REDIRECT={raw!r}: must be a location like /_datastore/")
    return raw


def _networks(raw: str) -> tuple[str, ...]:
    networks = []
    for item in raw.replace(" ", ",").split(","):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {item!r} is not an address or network") from None
    return tuple(networks)


def _public_url(raw: str) -> str:
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"PUBLIC_URL={raw!r}: must start with http:// or https://")
    return raw.rstrip("/")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: must be between {low} and {high}")
    return value


def _datastore(raw: str) -> Path:
    # resolve() follows a symlinked datastore, so every later containment check uses the real path.
    path = Path(raw).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        path = path.resolve(strict=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"DATASTORE={raw}: not a writable folder ({exc.strerror or exc})") from None
    return path


def _stored_secret(datastore: Path) -> str:
    path = datastore / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    # Written under a temporary name, then linked into place: two processes starting at once agree on
    # one secret (link fails for the loser, who reads the winner's), and nobody reads a half-written file.
    fd, tmp = tempfile.mkstemp(dir=datastore, prefix=".secret-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return secret
