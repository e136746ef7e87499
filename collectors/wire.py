"""The wire format between senders (collectors, applications) and the recorder.

msgpack arrays, versioned by their first element, so an old recorder can
recognise and count a newer sender instead of misreading it::

    DATA  [1, 1, sender, [sample, ...]]            or
          [1, 1, sender, [sample, ...], status]
          sample = [seq, timestamp, host, dataset, instance, {variable: value}, attempt]
          status = {"dropped": n, "buffered": n}   (the sender's own state, optional)
    ACK   [1, 2, [seq, ...], [[seq, reason], ...]]

``seq`` is the sender's own sequence number (it matches acks to its buffer);
``attempt`` is 1 on first send and grows on each resend, so the recorder can
report resends. ``value`` is a float, or None for unknown (rrdtool's ``U``).
An ACK lists the samples now durable (written, journaled, or recognised as
already held) and those refused for good, each with a short reason; either
way the sender forgets them.

``status`` is how a sender's losses reach the recorder's own metrics:
``dropped`` counts the samples it let go since it started because its buffer
was full, ``buffered`` the samples it holds unacknowledged. Every message
carries the current figures, so a lost message loses nothing.

Decoding here checks only the envelope, but bounds every part of it before
anything is kept: the message's size, the number of samples (msgpack refuses
a longer array before building it), the sender's name (the same kind of rule
as a host name: :func:`affair.names.is_valid` ``"sender"``) and the status
figures. The meaning of each sample (names, timestamps, numbers) is
:mod:`affair.ingest.validate`'s job.
"""

import struct
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeAlias, TypedDict

import msgpack
import zmq

from affair.errors import WireError
from affair.names import is_valid

VERSION = 1
KIND_DATA = 1
KIND_ACK = 2


STATUS_KEYS = ("dropped", "buffered")
MAX_SAMPLES = 10_000  # samples in one DATA message, unless the recorder says otherwise

# {variable: value}: a float, or None for unknown. A dict, not any Mapping:
# msgpack packs dicts only.
SampleValues: TypeAlias = dict[str, float | None]
# (seq, ts, host, dataset, instance, values, attempt), as a sender encodes it.
WireSample: TypeAlias = tuple[int, float, str, str, str, SampleValues, int]


class SenderStatus(TypedDict):
    """A sender's own state, carried by every DATA message it sends."""

    dropped: int
    buffered: int


class DataMessage(NamedTuple):
    """A decoded DATA message: the envelope is checked, the samples are not.

    Each raw sample should be a ``[seq, ts, host, dataset, instance, values,
    attempt]`` list, but is whatever the sender sent until
    :func:`affair.ingest.validate.validate_sample` has looked at it.
    """

    sender: str
    samples: list[Any]
    status: SenderStatus | None  # None when the sender sent none


class AckMessage(NamedTuple):
    """A decoded ACK, as the recorder sent it (its elements are not checked).

    ``acked``: seqs now durable; ``rejected``: ``(seq, reason)`` pairs refused for good.
    """

    acked: list[Any]
    rejected: list[tuple[Any, ...]]


def encode_data(
    sender: str, samples: Iterable[WireSample], status: SenderStatus | None = None
) -> bytes:
    """``samples``: iterable of (seq, ts, host, dataset, instance, values, attempt).

    ``status``: the sender's ``{"dropped": n, "buffered": n}``, or None to leave it out.
    """
    message = [VERSION, KIND_DATA, sender, [list(s) for s in samples]]
    if status is not None:
        message.append(status)
    return msgpack.packb(message)


def encode_ack(acked: Iterable[int], rejected: Iterable[tuple[int, str]] = ()) -> bytes:
    return msgpack.packb([VERSION, KIND_ACK, list(acked), [list(r) for r in rejected]])


def _unpack(payload, max_bytes, max_samples=MAX_SAMPLES):
    if len(payload) > max_bytes:
        raise WireError("oversized", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        message = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
            # Checked on each array's header, before its elements are built:
            # a message of many tiny samples is refused, not expanded.
            max_array_len=max(max_samples, 8),
        )
    except ValueError as error:
        # "N exceeds max_array_len(M)": a real array of N elements (a byte
        # each at least) fits in the message; a header claiming more is garbage.
        claimed, _, rest = str(error).partition(" ")
        if rest.startswith("exceeds max_array_len") and int(claimed) <= len(payload):
            raise WireError("oversized", f"{claimed} samples > limit {max_samples}") from None
        raise WireError("undecodable", type(error).__name__) from None
    except Exception as error:  # msgpack raises many types for garbage; all mean the same
        raise WireError("undecodable", type(error).__name__) from None
    if not isinstance(message, list) or len(message) < 2:
        raise WireError("structure", "not a [version, kind, ...] array")
    if message[0] != VERSION:
        raise WireError(
            "version", f"protocol version {message[0]!r}, this recorder speaks {VERSION}"
        )
    return message


def decode_report(
    payload: bytes, max_bytes: int = 1 << 20, max_samples: int = MAX_SAMPLES
) -> DataMessage:
    """Return ``(sender, raw_samples, status)``; ``status`` is None when the sender sent none.

    Raises WireError ``oversized`` (bytes or samples over the limits), ``name``
    (a sender name outside the rule), or another reason for a broken envelope.
    """
    message = _unpack(payload, max_bytes, max_samples)
    if message[1] != KIND_DATA or len(message) not in (4, 5):
        raise WireError("structure", "not a DATA message")
    sender, samples = message[2], message[3]
    if not isinstance(sender, str) or not isinstance(samples, list):
        raise WireError("structure", "DATA needs a sender name and a list of samples")
    if not is_valid("sender", sender):
        raise WireError("name", f"sender {sender[:60]!r}")
    status = message[4] if len(message) == 5 else None
    if status is not None and not _is_status(status):
        raise WireError("structure", "a status must be {'dropped': n, 'buffered': n}, n >= 0")
    return DataMessage(sender, samples, status)


def _is_status(status):
    return (
        isinstance(status, dict)
        and set(status) == set(STATUS_KEYS)
        and all(type(status[key]) is int and 0 <= status[key] < 1 << 63 for key in STATUS_KEYS)
    )


def decode_ack(payload: bytes, max_bytes: int = 1 << 20) -> AckMessage:
    """Return ``(acked_seqs, [(seq, reason), ...])``."""
    # An ACK may answer a whole burst of one sender's messages: its lists are
    # bounded by the recorder's burst, not by one message's sample limit.
    message = _unpack(payload, max_bytes, max_samples=max_bytes)
    if message[1] != KIND_ACK or len(message) != 4:
        raise WireError("structure", "not an ACK message")
    _, _, acked, rejected = message
    if not isinstance(acked, list) or not isinstance(rejected, list):
        raise WireError("structure", "ACK needs two lists")
    return AckMessage(
        acked, [tuple(item) for item in rejected if isinstance(item, list) and len(item) == 2]
    )


def read_monitor_event(monitor: zmq.Socket) -> int | None:
    """The next event number on a ZeroMQ monitor socket, or None when none waits.

    A monitor message is two frames: the event (uint16) and its value
    (uint32), then the endpoint. ``zmq.utils.monitor`` decodes the same but
    imports asyncio, which a node's collector has no need to load.
    """
    try:
        frames = monitor.recv_multipart(zmq.NOBLOCK)
    except zmq.Again:
        return None
    return struct.unpack("=H", frames[0][:2])[0]
