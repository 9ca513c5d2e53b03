"""
Which frames train together: target/reference sampling for monocular video.

Indoor self-supervision works when the camera between a target and its references moves with
"no rotation + moderate translation" (Bian et al., the data the paper trains on). Three ways to
choose references, from least to most informed:

* ``stride``: references at +-k frames (SC-Depth's ``skip_frames``); for videos whose motion is
  already suitable, such as SC-Depth's NYUv2 release.
* ``pose``: with camera poses (TUM, 7-Scenes, synthetic, a robot's odometry): the nearest frame
  on each side that moved at least ``min_translation`` metres, rejecting pairs that moved more
  than ``max_translation`` or rotated more than ``max_rotation_deg``.
* ``flow`` (no poses): sparse optical flow between frames; a pair is kept when the median flow is
  large enough and a homography (which explains any pure rotation) leaves parallax, i.e. the
  camera translated. See `flow_samples`.
"""

from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

SampleIndex = Tuple[int, List[int]]

#: the ways to choose references (``data.sampling``), described above
SAMPLING_METHODS = ('stride', 'pose', 'flow')


def reference_offsets(sequence_length: int, skip: int = 1) -> List[int]:
    """Offsets of the references around the target: 3 -> [-k, k], 5 -> [-2k, -k, k, 2k]."""
    if sequence_length < 2:
        raise ValueError(f'sequence_length must be >= 2, got {sequence_length}')
    if sequence_length == 2:
        return [skip]
    half = (sequence_length - 1) // 2
    return [skip * d for d in range(-half, half + 1) if d != 0]


def stride_samples(num_frames: int, sequence_length: int = 3, skip: int = 1,
                   max_skip: Optional[int] = None) -> List[SampleIndex]:
    """
    Every frame whose references at the fixed offsets exist, for each skip up to `max_skip`.

    One skip shows the pose network one motion per frame rate: at a steady speed it can learn
    that motion as a constant instead of measuring it, and its translation then no longer
    tracks the real one (what the odometry scale relies on). Several skips show it several.
    """
    samples: List[SampleIndex] = []
    for k in range(skip, max(skip, max_skip or skip) + 1):
        offsets = reference_offsets(sequence_length, k)
        first = max(0, -min(offsets))
        last = num_frames - max(0, max(offsets))
        samples.extend((i, [i + d for d in offsets]) for i in range(first, last))
    return samples


def relative_motion(pose_a: np.ndarray, pose_b: np.ndarray) -> Tuple[float, float]:
    """Measure translation (metres) and rotation (degrees) between camera-to-world poses."""
    rel = np.linalg.inv(pose_a) @ pose_b
    cos_angle = np.clip((np.trace(rel[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.linalg.norm(rel[:3, 3])), float(np.degrees(np.arccos(cos_angle)))


def pose_samples(poses: np.ndarray, sequence_length: int = 3, min_translation: float = 0.05,
                 max_translation: float = 0.3, max_rotation_deg: float = 5.0,
                 max_search: int = 30) -> List[SampleIndex]:
    """Targets with a reference on each side at a moderate, mostly translational motion."""
    directions = [1] if sequence_length == 2 else [-1, 1]
    per_side = max(1, (sequence_length - 1) // 2)
    n = len(poses)
    samples = []
    for i in range(n):
        refs: List[int] = []
        for direction in directions:
            refs.extend(_walk(poses, i, direction, per_side, min_translation, max_translation,
                              max_rotation_deg, max_search))
        if len(refs) == len(directions) * per_side:
            samples.append((i, sorted(refs)))
    return samples


def _walk(poses: np.ndarray, start: int, direction: int, count: int, min_translation: float,
          max_translation: float, max_rotation_deg: float, max_search: int) -> List[int]:
    """Successive references in one direction, each `min_translation` beyond the last."""
    refs = []
    anchor = start
    j = start + direction
    while len(refs) < count and 0 <= j < len(poses) and abs(j - anchor) <= max_search:
        moved, _ = relative_motion(poses[anchor], poses[j])
        if moved >= min_translation:
            moved_total, turned = relative_motion(poses[start], poses[j])
            if moved_total > max_translation * len(refs + [j]) or turned > max_rotation_deg:
                return []
            refs.append(j)
            anchor = j
        j += direction
    return refs if len(refs) == count else []


def pair_motion(gray_a: np.ndarray, gray_b: np.ndarray, max_corners: int = 300
                ) -> Tuple[float, float]:
    """Median flow and median parallax (flow a homography cannot explain), in pixels."""
    corners = cv2.goodFeaturesToTrack(gray_a, max_corners, 0.01, 7)
    if corners is None or len(corners) < 12:
        return 0.0, 0.0
    moved, status, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, corners, None)
    ok = status.ravel() == 1
    if ok.sum() < 12:
        return 0.0, 0.0
    a, b = corners[ok].reshape(-1, 2), moved[ok].reshape(-1, 2)
    flow = float(np.median(np.linalg.norm(b - a, axis=1)))
    homography, _ = cv2.findHomography(a, b, cv2.RANSAC, 1.0)
    if homography is None:
        return flow, flow
    predicted = cv2.perspectiveTransform(a[None].astype(np.float64), homography)[0]
    return flow, float(np.median(np.linalg.norm(b - predicted, axis=1)))


def flow_samples(num_frames: int, load_gray: Callable[[int], np.ndarray],
                 sequence_length: int = 3, min_flow: float = 4.0, max_flow: float = 40.0,
                 min_parallax_ratio: float = 0.015, report: Optional[List[dict]] = None
                 ) -> List[SampleIndex]:
    """
    Keyframe chains with moderate, translational motion, from images alone.

    Greedy: from the current keyframe, the next keyframe is the first frame whose median flow
    (at the given image size) reaches `min_flow`. The link is kept when the flow stays below
    `max_flow` and the parallax left after fitting a homography is at least
    `min_parallax_ratio` of the flow (a pure rotation leaves none; measured on the synthetic
    videos at 320x256: forward motion leaves 0.02-0.08 of the flow, turning 0.004-0.007, so
    the default sits between the two); otherwise the chain is cut there. Targets
    are interior keyframes of a chain, references its neighbours.
    """
    chains: List[List[int]] = [[0]]
    key_gray = load_gray(0)
    for j in range(1, num_frames):
        gray = load_gray(j)
        flow, parallax = pair_motion(key_gray, gray)
        if flow < min_flow:
            continue
        good = flow <= max_flow and parallax >= min_parallax_ratio * flow
        if report is not None:
            report.append({'from': chains[-1][-1], 'to': j, 'flow': flow, 'parallax': parallax,
                           'kept': good})
        if good:
            chains[-1].append(j)
        else:
            chains.append([j])
        key_gray = gray
    samples = []
    for chain in chains:
        samples.extend((chain[t], [chain[t + d] for d in offsets])
                       for t, offsets in _chain_targets(len(chain), sequence_length))
    return samples


def _chain_targets(length: int, sequence_length: int
                   ) -> Sequence[Tuple[int, List[int]]]:
    offsets = reference_offsets(sequence_length)
    first = max(0, -min(offsets))
    return [(t, offsets) for t in range(first, length - max(offsets))]
