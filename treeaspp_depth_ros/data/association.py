"""Pairing two streams of timestamps (RGB and depth, frames and poses) one to one."""

from typing import List, Tuple

import numpy as np


def associate(first: np.ndarray, second: np.ndarray, max_difference: float
              ) -> List[Tuple[int, int]]:
    """TUM `associate.py`: one-to-one pairs, closest stamps first, |dt| < max_difference."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if len(first) == 0 or len(second) == 0:
        return []
    order = np.argsort(second, kind='stable')
    sorted_second = second[order]
    # Candidates: the two neighbours of each stamp in the other list (enough for max_dt below
    # the frame period), and symmetrically, so the greedy pass sees every close pair.
    pos = np.searchsorted(sorted_second, first)
    cand_i, cand_j = [], []
    for offset in (-1, 0):
        j = np.clip(pos + offset, 0, len(second) - 1)
        cand_i.append(np.arange(len(first)))
        cand_j.append(order[j])
    order_first = np.argsort(first, kind='stable')
    sorted_first = first[order_first]
    pos2 = np.searchsorted(sorted_first, second)
    for offset in (-1, 0):
        i = np.clip(pos2 + offset, 0, len(first) - 1)
        cand_i.append(order_first[i])
        cand_j.append(np.arange(len(second)))
    ci = np.concatenate(cand_i)
    cj = np.concatenate(cand_j)
    diff = np.abs(first[ci] - second[cj])
    keep = diff < max_difference
    ci, cj, diff = ci[keep], cj[keep], diff[keep]
    pairs = []
    used_i, used_j = set(), set()
    for k in np.lexsort((cj, ci, diff)):
        a, b = int(ci[k]), int(cj[k])
        if a in used_i or b in used_j:
            continue
        used_i.add(a)
        used_j.add(b)
        pairs.append((a, b))
    pairs.sort()
    return pairs
