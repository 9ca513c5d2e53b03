"""
PyTorch datasets: training samples (target + references + K) and depth test sets.

Training samples are deterministic functions of ``(index, epoch)``: the augmentation RNG is
seeded from (seed, epoch, index), so results do not depend on the number of loader workers or
ranks, and a resumed run sees exactly the samples the interrupted one would have seen.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from treeaspp_depth_ros.data import DataError

from . import selection
from .augment import FrameTransform
from .scenes import Scene


@dataclass(frozen=True)
class SamplingConfig:
    """How references are chosen (see `treeaspp_depth_training.data.selection`)."""

    method: str = 'stride'
    sequence_length: int = 3
    skip_frames: int = 1
    min_translation: float = 0.05
    max_translation: float = 0.3
    max_rotation_deg: float = 5.0
    #: stride: also every skip from skip_frames up to this one (None: skip_frames only)
    max_skip_frames: Optional[int] = None


def scene_samples(scene: Scene, config: SamplingConfig) -> List[selection.SampleIndex]:
    """List the (target, references) tuples of one scene."""
    if scene.samples is not None:
        return list(scene.samples)
    if config.method == 'stride':
        return selection.stride_samples(len(scene), config.sequence_length, config.skip_frames,
                                        config.max_skip_frames)
    if config.method == 'pose':
        if scene.poses is None:
            raise DataError(f'scene {scene.name}: sampling "pose" needs camera poses '
                            f'(poses.txt / groundtruth.txt, or data.pose_topic of a bag); use '
                            f'"stride" or "flow"')
        return selection.pose_samples(scene.poses, config.sequence_length,
                                      config.min_translation, config.max_translation,
                                      config.max_rotation_deg)
    if config.method == 'flow':
        return selection.flow_samples(len(scene), lambda i: _gray(scene.frame(i)),
                                      config.sequence_length)
    raise DataError(f'unknown sampling method {config.method!r} (stride, pose or flow)')


def _gray(rgb: np.ndarray, width: int = 320) -> np.ndarray:
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    return cv2.cvtColor(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2GRAY)


class SequenceDataset(Dataset):
    """Self-supervised samples: ``tgt`` uint8 [3,H,W], ``refs`` uint8 [R,3,H,W], ``K`` [3,3]."""

    def __init__(self, scenes: Sequence[Scene], transform: FrameTransform,
                 sampling: SamplingConfig = SamplingConfig(), augment: bool = True,
                 seed: int = 0, every_scene: bool = False) -> None:
        """Index the samples; with `every_scene` (bags named one by one) each must give some."""
        self.scenes = list(scenes)
        self.transform = transform
        self.augment = augment
        self.seed = int(seed)
        self.index: List[Tuple[int, int, List[int], Optional[np.ndarray]]] = []
        for s, scene in enumerate(self.scenes):
            samples = scene_samples(scene, sampling)
            if every_scene and not samples:
                raise DataError(
                    f'{scene.name}: {len(scene)} usable frames give no training sample for '
                    f'sequence_length {sampling.sequence_length}, skip_frames '
                    f'{sampling.skip_frames}, sampling {sampling.method!r} (too short, or no '
                    f'frame pair passed the motion selection); record longer or drop it')
            for k, (tgt, refs) in enumerate(samples):
                K = scene.sample_intrinsics[k] if scene.sample_intrinsics else None
                self.index.append((s, tgt, list(refs), K))
        if not self.index:
            names = ', '.join(scene.name for scene in self.scenes[:5])
            raise DataError(f'no training samples in scenes {names}: too few frames for '
                            f'sequence_length {sampling.sequence_length} / skip '
                            f'{sampling.skip_frames}, or no pair passed the motion selection')
        counts = {len(refs) for _, _, refs, _ in self.index}
        if len(counts) != 1:
            raise DataError(f'samples have different numbers of references {sorted(counts)}; '
                            f'use one sequence_length')

    def __len__(self) -> int:
        return len(self.index)

    @property
    def num_references(self) -> int:
        return len(self.index[0][2])

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        s, tgt, refs, K = self.index[index]
        scene = self.scenes[s]
        frames = [scene.frame(i) for i in [tgt] + refs]
        K = scene.intrinsics if K is None else K
        rng = np.random.default_rng([self.seed, epoch, index]) if self.augment else None
        frames, K = self.transform(frames, K, rng)
        stacked = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        return {'tgt': stacked[0], 'refs': stacked[1:], 'K': torch.from_numpy(K).float()}

    def verify(self, full: bool = False) -> None:
        """
        Read frames before training starts so a bad file fails now, not hours later.

        Quick mode reads the first and last frame of every scene; full mode reads all.
        """
        for scene in self.scenes:
            indices = range(len(scene)) if full else sorted({0, len(scene) - 1})
            for i in indices:
                scene.frame(i)


class DepthTestSet(Dataset):
    """(RGB uint8 HxWx3, ground-truth depth float32 HxW metres, name) triples."""

    def __init__(self, items: Sequence[Tuple[Scene, int]], name: str = 'test') -> None:
        self.items = list(items)
        self.name = name
        if not self.items:
            raise DataError(f'test set {name} is empty')

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray, str]:
        scene, i = self.items[index]
        rgb = scene.frame(i)
        depth = scene.depth(i)
        if depth.shape != rgb.shape[:2]:
            raise DataError(f'{scene.frame_path(i)}: ground truth {depth.shape} does not match '
                            f'the image {rgb.shape[:2]}')
        return rgb, depth, scene.frame_path(i)

    def check(self) -> None:
        """Read the first and last item: fail now on unreadable or mismatched ground truth."""
        self[0]
        self[len(self) - 1]

    @classmethod
    def from_scenes(cls, scenes: Sequence[Scene], stride: int = 1, name: str = 'test',
                    limit: Optional[int] = None) -> 'DepthTestSet':
        """Every `stride`-th frame of scenes with ground truth."""
        items = []
        for scene in scenes:
            if not scene.has_depth:
                raise DataError(f'scene {scene.name} has no ground-truth depth for evaluation')
            items.extend((scene, i) for i in range(0, len(scene), max(1, stride)))
        return cls(items[:limit] if limit else items, name)


def collate_test(batch: List[Tuple[np.ndarray, np.ndarray, str]]
                 ) -> Tuple[List[np.ndarray], List[np.ndarray], List[str]]:
    """Keep numpy images of possibly different sizes as lists."""
    rgbs, depths, names = zip(*batch)
    return list(rgbs), list(depths), list(names)
