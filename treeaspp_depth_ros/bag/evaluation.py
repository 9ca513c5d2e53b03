"""
Pair images with ground-truth depth in a bag and score predictions on them.

Shared by `bag-eval` (offline and live) and `calibrate-scale`, so every mode pairs frames and
computes metrics the same way; only where the prediction comes from differs. Reading, the
pairing by header stamp and image decoding are the data layer's (:mod:`..data.rosbag`), the
same as training's bag reader uses.
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
import tempfile
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from treeaspp_depth_ros.cli import CommandError
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
from treeaspp_depth_ros.data import rosbag
from treeaspp_depth_ros.data.errors import DataError
from treeaspp_depth_ros.metrics import compute_depth_metrics, eigen_crop_mask, METRIC_NAMES


@dataclass
class Pair:
    """One image matched to one ground-truth depth map (ordinals count messages per topic)."""

    index: int
    image_ordinal: int
    depth_ordinal: int
    stamp_ns: int
    depth_stamp_ns: int
    bag_time_ns: int


@dataclass
class FrameData:
    """Everything about one evaluated frame, decoded lazily by the caller."""

    pair: Pair
    image_raw: bytes
    image_msg: object
    depth_msg: object
    camera_info_raw: Optional[bytes] = None
    camera_info_msg: Optional[object] = None


@dataclass
class EvalInputs:
    """The evaluation topics of one bag, checked, with the frame pairing decided."""

    reader: rosbag.BagReader
    image_topic: str
    image_type: str
    depth_topic: str
    camera_info_topic: Optional[str]
    pairs: List[Pair]
    image_count: int
    depth_count: int
    camera_infos: List[Tuple[int, int, bytes]] = field(default_factory=list)

    @property
    def bag(self) -> Path:
        return self.reader.path


def open_inputs(bag: Path, image_topic: str, depth_topic: str,
                camera_info_topic: Optional[str] = None, max_dt: float = 0.02,
                allow_unmatched: bool = False, max_frames: Optional[int] = None,
                auto_camera_info: bool = True) -> EvalInputs:
    """
    Open `bag`, validate the topics and pair images with depth by header stamp.

    Stamps are matched one-to-one, closest first, within `max_dt` seconds (exact stamps always
    pair). Unless `allow_unmatched`, any image or depth left without a partner is an error,
    since it usually means the wrong topic or a truncated recording.
    """
    reader = rosbag.BagReader(bag)
    try:
        image_type = reader.require_topic(
            image_topic, (rosbag.IMAGE, rosbag.COMPRESSED_IMAGE), 'image topic')
        reader.require_topic(depth_topic, (rosbag.IMAGE,), 'depth topic')
        if camera_info_topic:
            reader.require_topic(camera_info_topic, (rosbag.CAMERA_INFO,), 'camera_info topic')
        elif auto_camera_info:
            camera_info_topic = rosbag.find_camera_info_topic(reader, image_topic)
        image_stamps: List[Tuple[int, int]] = []
        depth_stamps: List[int] = []
        camera_infos: List[Tuple[int, int, bytes]] = []
        topics = [image_topic, depth_topic] + ([camera_info_topic] if camera_info_topic else [])
        for topic, msgtype, timestamp, data in reader.messages(topics):
            msg = reader.decode(topic, msgtype, timestamp, data)
            stamp = header_stamp_ns(msg)
            if topic == image_topic:
                image_stamps.append((stamp, timestamp))
            elif topic == depth_topic:
                depth_stamps.append(stamp)
            else:
                camera_infos.append((stamp, timestamp, bytes(data)))
        if not image_stamps:
            raise DataError(f'image topic {image_topic} in bag {bag} has no messages')
        if not depth_stamps:
            raise DataError(f'depth topic {depth_topic} in bag {bag} has no messages')
        matched = rosbag.pair_with_depth([s for s, _ in image_stamps], depth_stamps, max_dt)
        if not matched:
            raise rosbag.no_depth_pair_error(bag, image_topic, depth_topic, max_dt)
        unmatched = len(image_stamps) - len(matched), len(depth_stamps) - len(matched)
        if any(unmatched) and not allow_unmatched:
            raise CommandError(
                f'mismatched image/depth counts in bag {bag}: {len(image_stamps)} images on '
                f'{image_topic}, {len(depth_stamps)} depth maps on {depth_topic}, '
                f'{len(matched)} matched within {max_dt} s (pass --allow-unmatched to evaluate '
                'the matched frames only)')
        if max_frames is not None:
            matched = matched[:max(0, int(max_frames))]
        pairs = [Pair(index=k, image_ordinal=i, depth_ordinal=j, stamp_ns=image_stamps[i][0],
                      depth_stamp_ns=depth_stamps[j], bag_time_ns=image_stamps[i][1])
                 for k, (i, j) in enumerate(matched)]
        return EvalInputs(reader=reader, image_topic=image_topic, image_type=image_type,
                          depth_topic=depth_topic, camera_info_topic=camera_info_topic,
                          pairs=pairs, image_count=len(image_stamps),
                          depth_count=len(depth_stamps), camera_infos=camera_infos)
    except BaseException:
        reader.close()
        raise


def iter_frames(inputs: EvalInputs) -> Iterator[FrameData]:
    """
    Yield the paired frames in image-stamp order, reading the bag once more.

    Only frames whose partner has not arrived yet are buffered, so memory stays bounded.
    """
    reader = inputs.reader
    by_image = {p.image_ordinal: p for p in inputs.pairs}
    by_depth = {p.depth_ordinal: p for p in inputs.pairs}
    images: Dict[int, Tuple[bytes, object]] = {}
    depths: Dict[int, object] = {}
    info_stamps = np.array([s for s, _, _ in inputs.camera_infos], dtype=np.int64)
    info_cache: Dict[int, object] = {}
    next_index = 0
    counters = {inputs.image_topic: -1, inputs.depth_topic: -1}

    def camera_info_for(stamp: int):
        if not len(info_stamps):
            return None, None
        # The camera_info with the same stamp, else the latest one at or before the image.
        k = int(np.searchsorted(info_stamps, stamp, side='right')) - 1
        exact = np.nonzero(info_stamps == stamp)[0]
        k = int(exact[0]) if len(exact) else max(k, 0)
        if k not in info_cache:
            s, t, raw = inputs.camera_infos[k]
            info_cache.clear()
            info_cache[k] = reader.decode(inputs.camera_info_topic, rosbag.CAMERA_INFO, t, raw)
        return inputs.camera_infos[k][2], info_cache[k]

    for topic, msgtype, timestamp, data in reader.messages([inputs.image_topic,
                                                            inputs.depth_topic]):
        counters[topic] += 1
        ordinal = counters[topic]
        if topic == inputs.image_topic:
            if ordinal in by_image:
                images[by_image[ordinal].index] = (
                    bytes(data), reader.decode(topic, msgtype, timestamp, data))
        elif ordinal in by_depth:
            depths[by_depth[ordinal].index] = reader.decode(topic, msgtype, timestamp, data)
        while next_index in images and next_index in depths:
            raw, image_msg = images.pop(next_index)
            pair = inputs.pairs[next_index]
            info_raw, info_msg = camera_info_for(pair.stamp_ns)
            yield FrameData(pair=pair, image_raw=raw, image_msg=image_msg,
                            depth_msg=depths.pop(next_index), camera_info_raw=info_raw,
                            camera_info_msg=info_msg)
            next_index += 1
            if next_index >= len(inputs.pairs):
                return
    if next_index < len(inputs.pairs):
        raise DataError(
            f'bag {inputs.bag} changed or is truncated: frame {next_index} of '
            f'{inputs.image_topic}/{inputs.depth_topic} could not be read again')


def decode_rgb(inputs: EvalInputs, frame: FrameData) -> np.ndarray:
    """RGB of a frame; an unknown encoding or corrupt image is an error naming the topic."""
    from treeaspp_depth_ros.conversions.image import ImageConversionError
    try:
        return rosbag.decode_rgb(frame.image_msg, inputs.image_type)
    except ImageConversionError as error:
        raise DataError(
            f'image topic {inputs.image_topic} (stamp {frame.pair.stamp_ns} ns) in bag '
            f'{inputs.bag}: {error}') from None


def decode_depth(inputs: EvalInputs, frame: FrameData) -> np.ndarray:
    """Ground-truth depth in metres; an unknown encoding is an error naming the topic."""
    from treeaspp_depth_ros.conversions.image import (
        depth_image_msg_to_array, ImageConversionError)
    try:
        return depth_image_msg_to_array(frame.depth_msg)
    except ImageConversionError as error:
        raise DataError(
            f'depth topic {inputs.depth_topic} (stamp {frame.pair.depth_stamp_ns} ns) in bag '
            f'{inputs.bag}: {error}') from None


def fit_to(pred: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Resize a prediction to the ground truth's size (the caller's job per the metrics API)."""
    if pred.shape == tuple(shape):
        return pred
    return cv2.resize(pred, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


class MetricAccumulator:
    """
    Per-frame metrics now (median scaling), global-scale metrics once all ratios are known.

    The valid (prediction, ground truth) pixels of every frame go to a scratch file so that the
    global scale, a median over the whole sequence, can be applied exactly without keeping
    thousands of depth maps in memory or running the network twice.
    """

    def __init__(self, min_depth: float = 0.1, max_depth: float = 10.0,
                 crop: Optional[str] = None, metric: bool = False,
                 scratch_dir: Optional[Path] = None) -> None:
        self.min_depth, self.max_depth, self.crop = float(min_depth), float(max_depth), crop
        self.metric = metric
        self.frames: List[Dict[str, object]] = []
        self.skipped: List[Dict[str, object]] = []
        handle, name = tempfile.mkstemp(prefix='.pixels.', suffix='.f32', dir=scratch_dir)
        self._file = os.fdopen(handle, 'w+b')
        self._path = name
        self._offsets: List[Tuple[int, int]] = []

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self._path):
            os.unlink(self._path)

    def __enter__(self) -> 'MetricAccumulator':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _mask(self, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        with np.errstate(invalid='ignore'):
            mask = np.isfinite(gt) & (gt > self.min_depth) & (gt < self.max_depth) & \
                np.isfinite(pred) & (pred > 0)
        if self.crop == 'eigen':
            mask &= eigen_crop_mask(*gt.shape)
        return mask

    def add(self, pair: Pair, pred: np.ndarray, gt: np.ndarray,
            extra: Optional[Dict[str, object]] = None) -> Optional[Dict[str, object]]:
        """Score one frame; frames without usable ground truth are recorded as skipped."""
        pred = fit_to(np.asarray(pred, dtype=np.float32), gt.shape)
        record: Dict[str, object] = {'index': pair.index, 'stamp_ns': pair.stamp_ns}
        record.update(extra or {})
        mask = self._mask(pred, gt)
        if not mask.any():
            record['reason'] = 'no valid ground-truth pixels in range'
            self.skipped.append(record)
            return None
        # Only the valid pixels (the same set compute_depth_metrics would select), so the
        # metrics below and the global pass work on one compact array each.
        values = np.stack([pred[mask], gt[mask]]).astype(np.float32)
        median = compute_depth_metrics(values[0], values[1], self.min_depth, self.max_depth,
                                       None, scale='median')
        record['scale_ratio'] = float(median['scale'])
        record['valid_pixels'] = int(values.shape[1])
        record['median_scaled'] = {k: median[k] for k in METRIC_NAMES}
        if self.metric:
            metric = compute_depth_metrics(values[0], values[1], self.min_depth, self.max_depth,
                                           None, scale=1.0)
            record['metric'] = {k: metric[k] for k in METRIC_NAMES}
        self._offsets.append((self._file.tell(), values.shape[1]))
        self._file.write(values.tobytes())
        self.frames.append(record)
        return record

    def finish(self, global_scale: Optional[float] = None) -> Dict[str, object]:
        """Apply one global scale (default: median of the per-frame ratios) and aggregate."""
        if not self.frames:
            raise DataError('no frame had valid ground truth in '
                            f'[{self.min_depth}, {self.max_depth}] m; nothing to evaluate')
        ratios = np.array([f['scale_ratio'] for f in self.frames], dtype=np.float64)
        scale = float(np.median(ratios)) if global_scale is None else float(global_scale)
        self._file.flush()
        for record, (offset, count) in zip(self.frames, self._offsets):
            self._file.seek(offset)
            values = np.frombuffer(self._file.read(8 * count), dtype=np.float32).reshape(2, count)
            scaled = compute_depth_metrics(values[0], values[1], self.min_depth, self.max_depth,
                                           None, scale=scale)
            record['global_scaled'] = {k: scaled[k] for k in METRIC_NAMES}
        result: Dict[str, object] = {
            'frames': len(self.frames),
            'frames_skipped': len(self.skipped),
            'global_scale': scale,
            'median_scaled': aggregate(self.frames, 'median_scaled'),
            'global_scaled': aggregate(self.frames, 'global_scaled'),
            'metric': aggregate(self.frames, 'metric') if self.metric else None,
        }
        result.update(scale_statistics(ratios))
        return result


def aggregate(frames: List[Dict[str, object]], key: str) -> Dict[str, float]:
    """Mean of each metric over frames (the standard NYU averaging)."""
    return {name: float(np.mean([f[key][name] for f in frames])) for name in METRIC_NAMES}


def scale_statistics(ratios: np.ndarray) -> Dict[str, float]:
    """
    Spread of the per-frame scale ratio: what decides whether SLAM can use the depth.

    `scale_ratio_cv` (std / mean) is the headline: 0 means one fixed scale fits every frame.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    mean = float(np.mean(ratios))
    std = float(np.std(ratios))
    p5, p95 = (float(v) for v in np.percentile(ratios, [5, 95]))
    return {
        'scale_ratio_mean': mean,
        'scale_ratio_median': float(np.median(ratios)),
        'scale_ratio_std': std,
        'scale_ratio_cv': std / mean if mean else float('nan'),
        'scale_ratio_min': float(np.min(ratios)),
        'scale_ratio_max': float(np.max(ratios)),
        'scale_ratio_p5': p5,
        'scale_ratio_p95': p95,
        # Relative spread between the 5th and 95th percentiles, robust to a few outliers.
        'scale_ratio_p95_p5': p95 / p5 if p5 > 0 else float('nan'),
    }


def sample_indices(count: int, samples: int = 4) -> List[int]:
    """Evenly spaced frame indices for the report's image strip."""
    if count <= 0 or samples <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, min(samples, count))})


PredictFn = Callable[[FrameData, np.ndarray], Optional[np.ndarray]]
