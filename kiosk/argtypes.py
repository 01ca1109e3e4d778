"""argparse types for numbers from the command line: a bad value is a one-line usage error (exit 2)."""

import argparse
import logging
import math

log = logging.getLogger(__name__)


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_range(low, high=None):
    """Whole numbers from ``low`` to ``high`` (inclusive; no upper bound when None)."""

    def parse(text):
        value = _number(int, text)
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high if high is not None else ''}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_range(low, high=None, *, low_open=False):
    """Finite numbers from ``low`` (excluded with ``low_open``) to ``high``."""

    def parse(text):
        value = _number(float, text)
        if value < low or (low_open and value == low) or (high is not None and value > high):
            bound = f"({low}" if low_open else f"[{low}"
            raise argparse.ArgumentTypeError(f"{value:g} is outside {bound}, {high if high is not None else 'inf'}]")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
port_number = int_range(0, 65535)
probability = float_range(0.0, 1.0)
non_negative_float = float_range(0.0)
positive_float = float_range(0.0, low_open=True)
