"""CURVE keys and the recorder's allow-list: nobody without a known key writes a sample.

ZeroMQ's CURVE (libsodium) encrypts the link and proves who holds which
key. The recorder holds a secret key; each collector holds its own key pair
and the recorder's public key. The recorder's ZAP handler (pyzmq's
ThreadAuthenticator, on the recorder's context) accepts a connection only if
the collector's public key is on the allow-list from the config, so a
collector without an allowed key never completes its handshake and cannot
get a single message to the recorder, let alone a sample recorded.

Key files are ZeroMQ's own certificate format, read through
:mod:`affair.collectors.keys` (a collector reads its own keys there, without
this module); relative key paths in the config are taken from the config
file's directory, so ``/etc/affair/affair.toml`` can name
``keys/recorder.key_secret``.

A key is named by its file's stem (``node001`` for ``node001.key``). The ZAP
handler hands that name to ZeroMQ as the connection's User-Id, so every
message the recorder receives says which key sent it. With ``[recorder]
curve_bind_hosts`` the recorder accepts a sample only for the host of that
name or one of the key's ``curve_key_hosts`` patterns (:class:`HostBinding`):
a compromised node cannot overwrite another node's series.
"""

import logging
import os
import tempfile
from pathlib import Path

from zmq.auth.certs import create_certificates
from zmq.utils import z85

from affair.collectors.keys import (
    PUBLIC_SUFFIX,
    SECRET_SUFFIX,
    load_public_key,
    load_secret_key,
    resolve,
)
from affair.errors import ConfigError
from affair.hosts import HostMatcher

log = logging.getLogger(__name__)


def generate_keys(out_dir, names):
    """Write a key pair per name into ``out_dir``; return ``[(public_path, secret_path)]``.

    Refuses to overwrite an existing key (a recorder or collector would
    silently be locked out). The secret file is created readable by its
    owner only: it is written in a private temporary directory and linked
    into place, so it is never readable by others, not even for a moment.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"key name {name!r}: expected a plain file name like 'node01'")
        for suffix in (PUBLIC_SUFFIX, SECRET_SUFFIX):
            if (out_dir / f"{name}{suffix}").exists():
                raise FileExistsError(f"{out_dir / (name + suffix)} exists; not overwriting a key")
    written = []
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".affair-keys-") as private:
        for name in names:
            public, secret = create_certificates(private, name)
            os.chmod(secret, 0o600)
            os.chmod(public, 0o644)
            pair = []
            for source, suffix in ((public, PUBLIC_SUFFIX), (secret, SECRET_SUFFIX)):
                target = out_dir / f"{name}{suffix}"
                os.link(source, target)  # fails rather than replace a key made meanwhile
                pair.append(target)
            written.append(tuple(pair))
    return written


def load_key_names(paths, config_path="<config>", key="recorder.curve_allowed_keys", strict=False):
    """``{z85 public key: name}`` for the key files in ``paths`` (a name is the file's stem):
    key files, or directories whose ``*.key`` files count. The keys are the allow-list.

    ``strict``: one key under two names (``a.key`` copied to ``b.key``) is a
    ConfigError, since a key bound to host names must have exactly one;
    otherwise the first name (in path order) is kept.
    """
    names = {}
    for path in paths:
        path = Path(path)
        files = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise ConfigError(
                config_path, key, f"a directory holding *{PUBLIC_SUFFIX} files", str(path)
            )
        for file in files:
            public = load_public_key(file, config_path, key)
            name = file.name.removesuffix(PUBLIC_SUFFIX)
            known = names.setdefault(public, name)
            if strict and known != name:
                raise ConfigError(
                    config_path,
                    key,
                    f"each key under one name (curve_bind_hosts is on), but {file} holds the "
                    f"key of {known!r} too",
                )
    return names


def recorder_keys(config):
    """``(server_secret_key, {allowed public key: name})`` for the recorder, or ``(None, None)``.

    Every name in ``curve_key_hosts`` must be a key on the allow-list: a
    misspelt one would silently refuse its gateway's samples.
    """
    recorder = config.recorder
    if not recorder.curve_secret_key_file:
        return None, None
    _public, secret = load_secret_key(
        resolve(config.path, recorder.curve_secret_key_file),
        config.path,
        "recorder.curve_secret_key_file",
    )
    allowed = load_key_names(
        [resolve(config.path, p) for p in recorder.curve_allowed_keys],
        config.path,
        "recorder.curve_allowed_keys",
        strict=recorder.curve_bind_hosts,
    )
    names = set(allowed.values())
    for name in recorder.curve_key_hosts:
        if name not in names:
            raise ConfigError(
                config.path,
                f"recorder.curve_key_hosts.{name}",
                f"the name of a key on the allow-list (a {name}{PUBLIC_SUFFIX} in "
                "curve_allowed_keys)",
                name,
            )
    return secret, allowed


class AllowList:
    """The ZAP credentials provider: a public key is allowed or it is not."""

    def __init__(self, allowed):
        self.allowed = frozenset(allowed)

    def callback(self, domain, key):
        return key in self.allowed


class KeyNames:
    """The authenticator's ``curve_user_id``: a client's raw public key -> its key name."""

    def __init__(self, names):
        self._names = {z85.decode(public): name for public, name in names.items()}

    def __call__(self, client_public_key):
        name = self._names.get(client_public_key)
        # Only called for allowed keys, which all have names; pyzmq's own default otherwise.
        return name if name is not None else z85.encode(client_public_key).decode("ascii")


class HostBinding:
    """Which hosts a key may write: its own name, and the globs ``curve_key_hosts`` gives it.

    The globs read as everywhere else (:mod:`affair.hosts`): ``["*", "!ldc05"]``
    or ``["!ldc05"]`` lets the key write every host but ldc05.
    """

    def __init__(self, key_hosts):
        self._matchers = {name: HostMatcher(patterns) for name, patterns in key_hosts.items()}

    def allows(self, key_name, host):
        if host == key_name:
            return True
        matcher = self._matchers.get(key_name)
        return matcher is not None and matcher(host)


def start_authenticator(context, allowed):
    """Start the ZAP handler on ``context`` (before any CURVE server socket binds).

    ``allowed``: ``{public key: name}``; each connection's ZAP User-Id is its key's name.
    """
    # Imported here, for weight alone (no import circle): it loads asyncio, which a recorder
    # without CURVE never needs (its size: benchmarks/RESULTS.md, "Figures quoted from the code").
    from zmq.auth.thread import ThreadAuthenticator  # noqa: PLC0415

    authenticator = ThreadAuthenticator(context, log=logging.getLogger("affair.ingest.auth.zap"))
    authenticator.curve_user_id = KeyNames(allowed)  # pyzmq's documented override point
    authenticator.start()
    authenticator.configure_curve_callback("*", AllowList(allowed))
    log.info("CURVE on: %d collector key(s) allowed", len(allowed))
    return authenticator
