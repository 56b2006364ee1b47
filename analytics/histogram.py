"""Response times kept as counts per bucket, so medians add up across days and chatters.

Bucket ``b`` holds times t (seconds) with ``RATIO**b <= t + 1 < RATIO**(b + 1)``: each bucket
is 10 % wider than the one before, from under a second to a month (the last bucket holds
everything longer). A median read from the buckets is within half a bucket (±5 %) of the
exact one; the page shows it rounded to seconds, minutes or hours.
"""

from __future__ import annotations

import math
import operator

RATIO = 1.1
BUCKETS = 160  # 1.1**159 - 1 s is about 11 months
SQL_BUCKET = f"LEAST(FLOOR(LN(GREATEST(%s, 0) + 1) / LN({RATIO})), {BUCKETS - 1})::int"


def bucket_of(seconds: float) -> int:
    return min(math.floor(math.log(max(seconds, 0.0) + 1) / math.log(RATIO)), BUCKETS - 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    return RATIO**bucket - 1, RATIO ** (bucket + 1) - 1


def histogram_add(total: list[int], part: list[int]) -> list[int]:
    """``total`` plus ``part``, element by element (either may be empty)."""
    if not part:
        return total
    if not total:
        return list(part)
    if len(part) != len(total):
        width = max(len(part), len(total))
        total = total + [0] * (width - len(total))
        part = list(part) + [0] * (width - len(part))
    return list(map(operator.add, total, part))


def histogram_median(counts: list[int]) -> float | None:
    """The (lower) median time in seconds, read linearly inside the bucket that holds it, so
    it lies in the same bucket as the exact one; None without any reply."""
    n = sum(counts)
    if not n:
        return None
    half = n / 2
    seen = 0
    for bucket, count in enumerate(counts):
        if count and seen + count >= half:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * (half - seen) / count
        seen += count
    return None  # unreachable: the counts add up to n
