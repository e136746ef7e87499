"""The wire format between senders (collectors, applications) and the recorder.

msgpack arrays, versioned by their first element, so an old recorder can
recognise and count a newer sender instead of misreading it::

    DATA  [1, 1, sender, [sample, ...]]
          sample = [seq, timestamp, host, dataset, instance, {variable: value}, attempt]
    ACK   [1, 2, [seq, ...], [[seq, reason], ...]]

``seq`` is the sender's own sequence number (it matches acks to its buffer);
``attempt`` is 1 on first send and grows on each resend, so the recorder can
report resends. ``value`` is a float, or None for unknown (rrdtool's ``U``).
An ACK lists the samples now durable (written, journaled, or recognised as
already held) and those refused for good, each with a short reason; either
way the sender forgets them.

Decoding here checks only the envelope; the meaning of each sample (names,
timestamps, numbers) is :mod:`affair.validate`'s job.
"""

import msgpack

from affair.errors import WireError

VERSION = 1
KIND_DATA = 1
KIND_ACK = 2


def encode_data(sender, samples):
    """``samples``: iterable of (seq, ts, host, dataset, instance, values, attempt)."""
    return msgpack.packb([VERSION, KIND_DATA, sender, [list(s) for s in samples]])


def encode_ack(acked, rejected=()):
    return msgpack.packb([VERSION, KIND_ACK, list(acked), [list(r) for r in rejected]])


def _unpack(payload, max_bytes):
    if len(payload) > max_bytes:
        raise WireError("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        message = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
        )
    except Exception as error:  # msgpack raises many types for garbage; all mean the same
        raise WireError("undecodable", type(error).__name__) from None
    if not isinstance(message, list) or len(message) < 2:
        raise WireError("structure", "not a [version, kind, ...] array")
    if message[0] != VERSION:
        raise WireError(
            "version", f"protocol version {message[0]!r}, this recorder speaks {VERSION}"
        )
    return message


def decode_data(payload, max_bytes=1 << 20):
    """Return ``(sender, raw_samples)``; raw samples still need validation."""
    message = _unpack(payload, max_bytes)
    if message[1] != KIND_DATA or len(message) != 4:
        raise WireError("structure", "not a DATA message")
    _, _, sender, samples = message
    if not isinstance(sender, str) or not isinstance(samples, list):
        raise WireError("structure", "DATA needs a sender name and a list of samples")
    return sender, samples


def decode_ack(payload, max_bytes=1 << 20):
    """Return ``(acked_seqs, [(seq, reason), ...])``."""
    message = _unpack(payload, max_bytes)
    if message[1] != KIND_ACK or len(message) != 4:
        raise WireError("structure", "not an ACK message")
    _, _, acked, rejected = message
    if not isinstance(acked, list) or not isinstance(rejected, list):
        raise WireError("structure", "ACK needs two lists")
    return acked, [tuple(item) for item in rejected if isinstance(item, list) and len(item) == 2]
