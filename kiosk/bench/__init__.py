"""Benchmarks (`kiosk bench NAME`): each module exports register(subparsers) and prints figures."""

import argparse


def positive_ints(option):
    """An argparse type for comma-separated positive integers, e.g. ``--sizes 1000,10000``."""

    def parse(text):
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} wants comma-separated integers, got {text!r}") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(f"{option} wants positive integers")
        return values

    return parse
