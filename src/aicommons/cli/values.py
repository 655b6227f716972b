"""Flag values the commands share, refused by name (argparse's exit status 2) when they make no sense."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use a whole number of at least 1")
    return int(text)


def hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not hours >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"invalid number of hours {text!r}: use 0 or more")
    return hours
