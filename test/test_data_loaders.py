"""Dataset layouts, augmentation with exact intrinsics, and clear errors on bad data."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.synthetic import generate_sequence, save_sequence
from treeaspp_depth_training.config import ConfigError, load_config
from treeaspp_depth_training.data.augment import FrameTransform
from treeaspp_depth_training.data.datasets import SamplingConfig, SequenceDataset
from treeaspp_depth_training.data.scenes import (load_pairs, load_sc_depth, load_seven_scenes,
                                                 load_tum, load_video, Scene)
from treeaspp_depth_training.data.selection import flow_samples
from treeaspp_depth_training.data.testsets import load_test_layout, load_test_set
from treeaspp_depth_training.scripts.select_frames import main as select_frames_main


@pytest.fixture(scope='module')
def sequence():
    return generate_sequence(seed=11, num_frames=10, width=128, height=96)


@pytest.fixture()
def sc_depth_root(tmp_path: Path, sequence) -> Path:
    """SC-Depth's NYU layout: ROOT/training/{train,val}.txt and scene folders."""
    training = tmp_path / 'nyu' / 'training'
    save_sequence(sequence, training / 'kitchen_0001')
    save_sequence(sequence, training / 'office_0002')
    (training / 'train.txt').write_text('kitchen_0001\n')
    (training / 'val.txt').write_text('office_0002\n')
    return tmp_path / 'nyu'


def test_sc_depth_layout_gives_triplets_with_scaled_intrinsics(sc_depth_root, sequence):
    scenes = load_sc_depth(sc_depth_root, 'train')
    dataset = SequenceDataset(scenes, FrameTransform(64, 64), SamplingConfig(skip_frames=2))
    assert len(dataset) == 10 - 2 * 2 and dataset.num_references == 2
    sample = dataset[(0, 0)]
    assert sample['tgt'].shape == (3, 64, 64) and sample['refs'].shape == (2, 3, 64, 64)
    assert str(sample['tgt'].dtype) == 'torch.uint8'
    # 128x96 -> 64x64 then a 1-1.15 zoom: focal lengths shrink by about 2 / 1.5
    fx, fy = float(sample['K'][0, 0]), float(sample['K'][1, 1])
    assert sequence.intrinsics[0, 0] / 2 * 0.99 <= fx <= sequence.intrinsics[0, 0] / 2 * 1.16
    assert sequence.intrinsics[1, 1] / 1.5 * 0.99 <= fy <= sequence.intrinsics[1, 1] / 1.5 * 1.16
    # deterministic per (index, epoch), different across epochs
    assert all((dataset[(3, 1)][k] == dataset[(3, 1)][k]).all() for k in ('tgt', 'K'))
    assert any(not (dataset[(3, 1)]['K'] == dataset[(3, e)]['K']).all() for e in range(2, 6))


def test_missing_cam_txt_empty_list_and_unreadable_frames_name_the_file(sc_depth_root):
    training = sc_depth_root / 'training'
    (training / 'kitchen_0001' / 'cam.txt').unlink()
    with pytest.raises(DataError, match=r'kitchen_0001/cam\.txt'):
        load_sc_depth(sc_depth_root, 'train')
    (training / 'train.txt').write_text('\n# nothing\n')
    with pytest.raises(DataError, match=r'train\.txt is empty'):
        load_sc_depth(sc_depth_root, 'train')
    broken = training / 'office_0002' / '0000003.jpg'
    broken.write_bytes(b'not a jpeg')
    scenes = load_sc_depth(sc_depth_root, 'val')
    dataset = SequenceDataset(scenes, FrameTransform(64, 64))
    with pytest.raises(DataError, match=r'office_0002/0000003\.jpg'):
        dataset.verify(full=True)


def test_pose_sampling_prefers_translation(sequence):
    forward = Scene('fwd', sequence.images, sequence.intrinsics, poses=sequence.poses)
    turning_seq = generate_sequence(seed=11, num_frames=10, width=64, height=64,
                                    trajectory='rotate')
    turning = Scene('rot', turning_seq.images, turning_seq.intrinsics, poses=turning_seq.poses)
    config = SamplingConfig(method='pose', min_translation=0.05, max_rotation_deg=3.0)
    samples = SequenceDataset([forward], FrameTransform(64, 64), config).index
    assert len(samples) >= 4
    with pytest.raises(DataError, match='no training samples'):
        SequenceDataset([turning], FrameTransform(64, 64), config)


def test_stride_sampling_over_a_range_of_skips_shows_every_motion(sequence):
    """Use max_skip_frames: the same frames at every gap, so no single motion is a constant."""
    scene = Scene('fwd', sequence.images, sequence.intrinsics, poses=sequence.poses)
    n = len(scene)
    one = SequenceDataset([scene], FrameTransform(64, 64), SamplingConfig(
        sequence_length=2, skip_frames=2)).index
    assert sorted({refs[0] - target for _, target, refs, _ in one}) == [2]
    several = SequenceDataset([scene], FrameTransform(64, 64), SamplingConfig(
        sequence_length=2, skip_frames=2, max_skip_frames=4)).index
    gaps = [refs[0] - target for _, target, refs, _ in several]
    assert sorted(set(gaps)) == [2, 3, 4]
    assert len(several) == sum(n - k for k in (2, 3, 4))
    for bad in ({'data.skip_frames': 4, 'data.max_skip_frames': 2},
                {'data.max_skip_frames': 'abc'}, {'data.max_skip_frames': 2.5},
                {'data.skip_frames': 0}):
        with pytest.raises(ConfigError, match='max_skip_frames'):
            load_config('demo', bad)
    with pytest.raises(ConfigError, match='stride only'):
        load_config('demo_odometry', {'data.sampling': 'pose'})
    # the recipe for the odometry scale is the demo's, with every gap from 1 to 8 frames
    demo, odometry = load_config('demo'), load_config('demo_odometry')
    assert (odometry['data']['skip_frames'], odometry['data']['max_skip_frames']) == (1, 8)
    assert odometry['optim']['epochs'] > demo['optim']['epochs']
    assert odometry['model'] == demo['model']


def _blob_frame(u: float, v: float) -> np.ndarray:
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(frame, (int(round(u * 16)), int(round(v * 16))), 48, (255, 255, 255), -1,
               cv2.LINE_AA, shift=4)
    return frame


def test_augmentation_moves_intrinsics_with_the_pixels():
    """
    A 3-D point projects, through the augmented K, onto its spot in the augmented image.

    A horizontal flip shows the mirrored world (x -> -x), as in SC-SfMLearner: all frames of a
    sample are mirrored, so the geometry between them stays consistent.
    """
    K = np.array([[500.0, 0, 330.0], [0, 505.0, 240.0], [0, 0, 1]])
    point = np.array([0.4, -0.3, 2.0])
    u, v, w = K @ point
    frame = _blob_frame(u / w, v / w)
    transform = FrameTransform(320, 256)
    flips = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        (out,), K2 = transform([frame], K, rng)
        gray = out[..., 0].astype(np.float64)
        ys, xs = np.nonzero(gray > 20)
        weights = gray[ys, xs]
        found = np.array([np.average(xs, weights=weights), np.average(ys, weights=weights)])
        errors = []
        for mirrored in (point, point * [-1, 1, 1]):
            p = K2 @ mirrored
            errors.append(np.abs(found - p[:2] / p[2]).max())
        flips += errors[1] < errors[0]
        assert min(errors) < 1.0, (seed, found, errors)
    assert 0 < flips < 8  # both flipped and unflipped cases were checked


def test_pair_layout(tmp_path, sequence):
    scene = tmp_path / 'rect' / 'scene_a'
    scene.mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(scene / f'{i:07d}_{i % 2}.jpg'), sequence.images[i][..., ::-1])
    for k in range(2):
        np.savetxt(scene / f'{2 * k:07d}_cam.txt', sequence.intrinsics * [[1 + k], [1 + k], [1]])
    (tmp_path / 'rect' / 'train.txt').write_text('scene_a\n')
    scenes = load_pairs(tmp_path / 'rect')
    dataset = SequenceDataset(scenes, FrameTransform(64, 64), augment=False)
    assert len(dataset) == 2 and dataset.num_references == 1
    assert float(dataset[1]['K'][0, 0]) == pytest.approx(2 * float(dataset[0]['K'][0, 0]))


def test_test_layouts_and_shape_errors(tmp_path, sequence):
    root = tmp_path / 'testing'
    (root / 'color').mkdir(parents=True)
    (root / 'depth').mkdir()
    for i in range(3):
        cv2.imwrite(str(root / 'color' / f'{i:04d}.png'), sequence.images[i][..., ::-1])
        depth = np.round(sequence.depths[i] * 5000).astype(np.uint16)
        cv2.imwrite(str(root / 'depth' / f'{i:04d}.png'), depth)
    test_set = load_test_set(root)
    rgb, depth, name = test_set[1]
    assert rgb.shape == (96, 128, 3) and np.abs(depth - sequence.depths[1]).max() < 1e-3
    # older layout: one depth.npy (N x H x W metres)
    npy_root = tmp_path / 'npy'
    (npy_root / 'color').mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(npy_root / 'color' / f'{i:04d}.png'), sequence.images[i][..., ::-1])
    np.save(npy_root / 'depth.npy', sequence.depths[:3])
    assert np.allclose(load_test_layout(npy_root)[2][1], sequence.depths[2])
    np.save(npy_root / 'depth.npy', sequence.depths[:3, :48])
    with pytest.raises(DataError, match=r'depth\.npy'):
        load_test_layout(npy_root)
    np.save(npy_root / 'depth.npy', sequence.depths[:2])
    with pytest.raises(DataError, match=r'depth\.npy must be N x H x W with N = 3'):
        load_test_layout(npy_root)
    (root / 'depth' / '0002.png').rename(root / 'depth' / 'x.png')
    with pytest.raises(DataError, match=r'do not pair up: .*0002\.png vs .*x\.png'):
        load_test_layout(root)
    (root / 'depth' / 'x.png').unlink()
    with pytest.raises(DataError, match=r'depth has 2 depth maps for 3 images'):
        load_test_layout(root)


def test_tum_layout_with_groundtruth(tmp_path, sequence):
    root = tmp_path / 'rgbd_dataset_freiburg3_long_office_household'
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    lines = []
    for i in range(4):
        stamp = 1000.0 + i / 30
        cv2.imwrite(str(root / 'rgb' / f'{stamp:.6f}.png'), sequence.images[i][..., ::-1])
        cv2.imwrite(str(root / 'depth' / f'{stamp + 0.004:.6f}.png'),
                    np.round(sequence.depths[i] * 5000).astype(np.uint16))
        lines.append(f'{stamp + 0.001:.6f} {i * 0.1} 0 0 0 0 0 1')
    (root / 'groundtruth.txt').write_text('# timestamp tx ty tz qx qy qz qw\n'
                                          + '\n'.join(lines))
    (scene,) = load_tum(root)  # no rgb.txt / depth.txt: files listed by their timestamps
    assert len(scene) == 4
    assert scene.intrinsics[0, 0] == pytest.approx(535.4 * 128 / 640)  # scaled to the images
    assert np.allclose(scene.poses[3, :3, 3], [0.3, 0, 0])
    assert np.allclose(scene.depth(2), sequence.depths[2], atol=1e-3)
    with pytest.raises(DataError, match=r'rgb\.txt'):  # the bag reader's error, as DataError
        load_tum(root / 'rgb')


def test_seven_scenes_real_video(kitchen_dir):
    (scene,) = load_seven_scenes(kitchen_dir)
    assert len(scene) == 50 and scene.poses.shape == (50, 4, 4)
    assert scene.intrinsics[0, 0] == pytest.approx(585.0)
    depth = scene.depth(0)
    valid = depth[depth > 0]
    assert depth.shape == (480, 640) and 0.3 < np.median(valid) < 5.0
    config = SamplingConfig(method='pose', min_translation=0.02, max_rotation_deg=10.0)
    dataset = SequenceDataset([scene], FrameTransform(128, 96), config, augment=False)
    assert len(dataset) > 10


def test_flow_selection_keeps_translation_and_cuts_rotation(tmp_path):
    """Without poses, frames are chosen from optical flow and homography parallax."""
    forward = generate_sequence(seed=5, num_frames=20, width=320, height=256)
    save_sequence(forward, tmp_path / 'walk')
    assert select_frames_main([str(tmp_path / 'walk'), '--method', 'flow', '--in-place']) == 0
    (scene,) = load_video(tmp_path / 'walk')
    assert scene.samples and all(len(refs) == 2 for _, refs in scene.samples)
    turning = generate_sequence(seed=5, num_frames=20, width=320, height=256,
                                trajectory='rotate')
    report = []
    samples = flow_samples(20, lambda i: cv2.cvtColor(turning.images[i], cv2.COLOR_RGB2GRAY),
                           report=report)
    assert not samples and report and not any(link['kept'] for link in report)


def _jpeg_copy(kitchen_dir: Path, folder: Path, count: int) -> Path:
    """Copy the first `count` kitchen frames as JPEG 7-Scenes frames (as the 1000-frame video)."""
    folder.mkdir()
    for i in range(150, 150 + count):
        stem = f'frame-{i:06d}'
        bgr = cv2.imread(str(kitchen_dir / f'{stem}.color.png'))
        cv2.imwrite(str(folder / f'{stem}.color.jpg'), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        for suffix in ('.depth.png', '.pose.txt'):
            source = kitchen_dir / f'{stem}{suffix}'
            (folder / source.name).write_bytes(source.read_bytes())
    return folder


def test_seven_scenes_reads_jpeg_colour_frames(kitchen_dir, tmp_path):
    folder = _jpeg_copy(kitchen_dir, tmp_path / 'jpeg', 6)
    (scene,) = load_seven_scenes(folder)
    (png,) = load_seven_scenes(kitchen_dir)
    assert len(scene) == 6 and scene.poses.shape == (6, 4, 4)
    assert np.allclose(scene.poses, png.poses[:6])
    # the same picture, up to JPEG's loss
    assert np.abs(scene.frame(3).astype(int) - png.frame(3).astype(int)).mean() < 4.0
    assert load_test_set(folder, stride=2).items[-1][1] == 4  # detected as 7-Scenes
    (folder / 'frame-000151.depth.png').unlink()
    with pytest.raises(DataError, match='6 colour and 5 depth'):
        load_seven_scenes(folder)


def test_frames_window_splits_one_video_by_time(kitchen_dir):
    """data.frames / val.frames: train and validate on disjoint time ranges of one video."""
    from treeaspp_depth_training.data.builders import build_train_dataset, build_val_set
    config = load_config('demo', {
        'data.format': '7scenes', 'data.root': str(kitchen_dir), 'data.frames': [0, 30],
        'data.sampling': 'stride', 'data.sequence_length': 3, 'data.width': 64,
        'data.height': 64, 'val.format': '7scenes', 'val.frames': [40, 50], 'val.stride': 5})
    train = build_train_dataset(config)
    (scene,) = train.scenes
    (full,) = load_seven_scenes(kitchen_dir)
    assert len(scene) == 30 and np.allclose(scene.poses, full.poses[:30])
    used = {i for _, tgt, refs, _ in train.index for i in [tgt, *refs]}
    assert max(used) == 29
    assert np.array_equal(scene.depth(7), full.depth(7), equal_nan=True)
    val = build_val_set(config)
    assert [i for _, i in val.items] == [40, 45]
    mixed = build_train_dataset(load_config(config, {'data.add_synthetic': True}))
    assert len(mixed.scenes) == 1 + config['data']['synthetic']['sequences']
    assert len(mixed) > len(train)
    for bad in ([5, 5], [3], [-1, 4], 'all'):
        with pytest.raises(ConfigError, match='data.frames'):
            load_config('demo', {'data.frames': bad})
