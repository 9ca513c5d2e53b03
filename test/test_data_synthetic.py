"""The synthetic indoor video: deterministic, geometrically exact, the motion it promises."""

import numpy as np
import pytest
import torch

from treeaspp_depth_ros.data.sc_depth import DEPTH_PNG_SCALE
from treeaspp_depth_ros.data.synthetic import generate_sequence, save_sequence
from treeaspp_depth_ros.view_synthesis import inverse_warp, mat2pose_vec
from treeaspp_depth_training.data.scenes import load_scene_folder
from treeaspp_depth_training.data.selection import relative_motion


@pytest.fixture(scope='module')
def forward():
    return generate_sequence(seed=3, num_frames=12, width=128, height=96, trajectory='forward')


def test_shapes_types_and_determinism(forward):
    seq = forward
    assert seq.images.shape == (12, 96, 128, 3) and seq.images.dtype == np.uint8
    assert seq.depths.shape == (12, 96, 128) and seq.depths.dtype == np.float32
    assert np.all(seq.depths > 0.1) and np.all(seq.depths < 13.0)  # fits uint16 / 5000 PNGs
    assert seq.intrinsics.shape == (3, 3) and seq.poses.shape == (12, 4, 4)
    rotations = seq.poses[:, :3, :3]
    assert np.allclose(rotations @ rotations.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    again = generate_sequence(seed=3, num_frames=12, width=128, height=96)
    assert np.array_equal(again.images, seq.images) and np.array_equal(again.depths, seq.depths)
    other = generate_sequence(seed=4, num_frames=12, width=128, height=96)
    assert not np.array_equal(other.images, seq.images)
    # textured, not flat: a photometric loss needs image gradients
    assert np.abs(np.diff(seq.images.astype(np.float32), axis=2)).mean() > 2.0


def test_trajectories_have_the_promised_motion(forward):
    moves = [relative_motion(a, b) for a, b in zip(forward.poses[:-1], forward.poses[1:])]
    translation = np.array([m[0] for m in moves])
    rotation = np.array([m[1] for m in moves])
    print('forward: per-frame translation', translation.mean(), 'm, rotation',
          rotation.mean(), 'deg')
    assert 0.02 < translation.mean() < 0.08 and rotation.max() < 1.0
    turning = generate_sequence(seed=3, num_frames=12, width=64, height=64, trajectory='rotate')
    moves = [relative_motion(a, b) for a, b in zip(turning.poses[:-1], turning.poses[1:])]
    assert np.mean([m[1] for m in moves]) > 1.4 and np.mean([m[0] for m in moves]) < 0.01


def _warp_error(seq, tgt: int, ref: int, use_pose: bool) -> float:
    """Photometric error after warping `ref` into `tgt` with ground-truth depth and pose."""
    def tensor(image):
        return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255

    relative = np.linalg.inv(seq.poses[ref]) @ seq.poses[tgt]  # tgt camera -> ref camera
    pose = torch.from_numpy(mat2pose_vec(relative) if use_pose else np.zeros(6))[None].float()
    depth = torch.from_numpy(seq.depths[tgt])[None, None]
    ref_depth = torch.from_numpy(seq.depths[ref])[None, None]
    K = torch.from_numpy(seq.intrinsics)[None].float()
    warped, valid, projected, computed = inverse_warp(tensor(seq.images[ref]), depth, ref_depth,
                                                      pose, K)
    mask = valid[0, 0].bool()
    error = (warped - tensor(seq.images[tgt])).abs().mean(1)[0][mask].mean()
    if use_pose:
        # the depth maps describe one scene: the warped target depth matches the reference's
        geometry = ((computed - projected).abs() / (computed + projected))[0, 0][mask]
        assert geometry.median() < 0.01
    return float(error)


def test_ground_truth_geometry_explains_the_images(forward):
    """Depth is z-depth, poses camera-to-world in the optical frame, K the projection."""
    with_pose = _warp_error(forward, 5, 8, use_pose=True)
    identity = _warp_error(forward, 5, 8, use_pose=False)
    print(f'warp error with ground-truth pose {with_pose:.4f}, identity {identity:.4f}')
    assert with_pose < 0.5 * identity


def test_saved_sequence_loads_as_a_scene_folder(tmp_path, forward):
    folder = save_sequence(forward, tmp_path / 'scene', image_ext='.png')
    scene = load_scene_folder(folder, require_depth=True)
    assert len(scene) == 12 and np.allclose(scene.intrinsics, forward.intrinsics, atol=1e-6)
    assert np.array_equal(scene.frame(4), forward.images[4])
    assert np.abs(scene.depth(4) - forward.depths[4]).max() <= 0.5 / DEPTH_PNG_SCALE + 1e-6
    assert np.allclose(scene.poses, forward.poses, atol=1e-7)
