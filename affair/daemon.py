"""What every long-running affair process shares: logging and clean stops."""

import logging
import signal
import sys
import threading


def setup_logging(level="INFO"):
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def stop_on_signals(who, signals=(signal.SIGTERM, signal.SIGINT)):
    """An Event set by SIGTERM or SIGINT, so loops can finish their work and flush.

    ``who`` names the process in the log line ("recorder", "collector"...):
    a demo or a systemd stop signals several at once.
    """
    stop = threading.Event()

    def handler(signum, _frame):
        logging.getLogger("affair").info(
            "%s: %s received, flushing and stopping", who, signal.Signals(signum).name
        )
        stop.set()

    for signum in signals:
        signal.signal(signum, handler)
    return stop
