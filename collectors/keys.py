"""A node's CURVE keys: reading ZeroMQ key files, and the collector's own key pair.

Key files are ZeroMQ's own certificate format (``zmq.auth.create_certificates``):
``NAME.key`` holds the public key and may be copied anywhere; ``NAME.key_secret``
holds both keys and must stay on its machine, readable by its owner only.
Relative key paths in the config are taken from the config file's directory,
so ``/etc/affair/affair.toml`` can name ``keys/collector.key_secret``.

The reading lives on the node side because a collector needs it and must not
import the station; the recorder's side (making keys, the allow-list, the ZAP
handler: :mod:`affair.ingest.auth`) reads its key files through this module too.
"""

from pathlib import Path

from zmq.auth.certs import load_certificate

from affair.errors import ConfigError

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


def load_secret_key(path, config_path="<config>", key="curve_secret_key_file"):
    """``(public, secret)`` from a ``.key_secret`` file, or ConfigError naming ``key``."""
    public, secret = _load(path, config_path, key)
    if secret is None:
        raise ConfigError(config_path, key, "a secret key file (NAME.key_secret)", str(path))
    return public, secret


def load_public_key(path, config_path="<config>", key="curve_recorder_key_file"):
    public, _secret = _load(path, config_path, key)
    return public


def _load(path, config_path, key):
    if not Path(path).is_file():
        raise ConfigError(
            config_path, key, "an existing key file (`affair keys --out DIR` makes them)", str(path)
        )
    try:
        return load_certificate(path)
    except (OSError, ValueError) as error:
        raise ConfigError(
            config_path, key, f"a readable ZeroMQ key file ({error})", str(path)
        ) from None


def resolve(config_path, path):
    """A key path from the config: relative ones are relative to the config file."""
    path = Path(path)
    if path.is_absolute() or config_path in (None, "<config>"):
        return path
    return Path(config_path).resolve().parent / path


def collector_keys(config, secret_key_file=None, recorder_key_file=None):
    """The Sender's ``curve`` triple (public, secret, server public), or None for plain TCP.

    Command-line files (already relative to the working directory) override the config's.
    """
    collector = config.collector
    secret_file = secret_key_file or (
        collector.curve_secret_key_file and resolve(config.path, collector.curve_secret_key_file)
    )
    server_file = recorder_key_file or (
        collector.curve_recorder_key_file
        and resolve(config.path, collector.curve_recorder_key_file)
    )
    if not secret_file and not server_file:
        return None
    if not secret_file or not server_file:
        missing = "curve_secret_key_file" if not secret_file else "curve_recorder_key_file"
        raise ConfigError(config.path, f"collector.{missing}", "both CURVE key files, or neither")
    public, secret = load_secret_key(secret_file, config.path, "collector.curve_secret_key_file")
    server = load_public_key(server_file, config.path, "collector.curve_recorder_key_file")
    return public, secret, server
