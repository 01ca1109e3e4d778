"""Digits as people type them: Eastern Arabic (and Persian) digits are accepted wherever digits are."""

EASTERN_TO_WESTERN = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def western_digits(text):
    """``text`` stripped, with Eastern Arabic and Persian digits turned into 0-9."""
    return str(text).strip().translate(EASTERN_TO_WESTERN)
