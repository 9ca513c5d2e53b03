"""Datasets from a training config (the `data` and `val` sections)."""

from typing import Any, Dict, Optional

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.sc_depth import find_split_file

from .augment import FrameTransform
from .datasets import DepthTestSet, SamplingConfig, SequenceDataset
from .scenes import apply_sample_files, frame_window, load_scenes, synthetic_scenes
from .testsets import load_test_set, synthetic_test_set


def build_train_dataset(config: Dict[str, Any]) -> SequenceDataset:
    """Build the training samples of ``config['data']``; bad data fails here."""
    data = config['data']
    scenes = []
    if data['format'] != 'synthetic':
        if not data['root']:
            raise DataError(f'data.root is required for data.format {data["format"]!r}')
        scenes = load_scenes(data['format'], data['root'], split='train', **bag_options(data))
        if data['samples']:  # before the window: the files number the scene's own frames
            apply_sample_files(scenes, data['samples'])
        scenes = frame_window(scenes, data['frames'])
    if data['format'] == 'synthetic' or data['add_synthetic']:
        syn = data['synthetic']
        scenes += synthetic_scenes(syn['sequences'], syn['frames'], data['width'],
                                   data['height'], syn['trajectory'], syn['seed'],
                                   syn['supersample'])
    sampling = SamplingConfig(data['sampling'], data['sequence_length'], data['skip_frames'],
                              data['min_translation'], data['max_translation'],
                              data['max_rotation_deg'], data['max_skip_frames'])
    transform = FrameTransform(data['width'], data['height'], data['flip'],
                               (data['scale_min'], data['scale_max']))
    dataset = SequenceDataset(scenes, transform, sampling, augment=True,
                              seed=config['train']['seed'],
                              every_scene=data['format'] == 'bag')
    if data['verify'] != 'off':
        dataset.verify(full=data['verify'] == 'full')
    return dataset


def bag_options(data: Dict[str, Any]) -> Dict[str, Any]:
    """Topics and intrinsics of the ``bag`` layout, from the ``data`` section."""
    return {'image_topic': data['image_topic'], 'camera_info_topic': data['camera_info_topic'],
            'intrinsics': data['intrinsics'], 'pose_topic': data['pose_topic']}


def build_val_set(config: Dict[str, Any]) -> Optional[DepthTestSet]:
    """Build the depth validation set of ``config['val']`` (None when disabled)."""
    val, data = config['val'], config['data']
    layout = val['format']
    if layout == 'auto':
        if val['root']:
            layout = 'path'
        elif data['format'] == 'synthetic':
            layout = 'synthetic'
        elif data['format'] == 'sc_depth' and _has_val_split(data['root']):
            layout = 'sc_depth'
        else:
            return None
    if layout == 'none':
        return None
    # with val.frames, the limit counts the frames inside the window
    limit = None if val['frames'] is not None else val['limit'] or None
    if layout == 'synthetic':
        syn = val['synthetic']
        test_set = synthetic_test_set(syn['sequences'], syn['frames'], data['width'],
                                      data['height'], syn['trajectory'], syn['seed'])
        test_set.items = test_set.items[:limit] if limit else test_set.items
    elif layout == 'bag':
        options = dict(bag_options(data), pose_topic=None, depth_topic=val['depth_topic'],
                       need_depth=True)
        scenes = load_scenes('bag', val['root'] or data['root'], split='val', **options)
        test_set = DepthTestSet.from_scenes(scenes, val['stride'], 'bag', limit)
    else:
        root = val['root'] or data['root']
        test_set = load_test_set(root, 'auto' if layout == 'path' else layout, val['stride'],
                                 limit)
    if val['frames'] is not None:
        start, stop = val['frames']
        test_set.items = [(scene, i) for scene, i in test_set.items if start <= i < stop]
        if not test_set.items:
            raise DataError(f'val.frames {val["frames"]} select no validation frame')
        test_set.items = test_set.items[:val['limit'] or None]
    test_set.check()
    return test_set


def _has_val_split(root: Optional[str]) -> bool:
    if not root:
        return False
    try:
        find_split_file(root, 'val')
    except DataError:
        return False
    return True
