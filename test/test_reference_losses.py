"""View synthesis and losses on real 7-Scenes frames equal SC-SfMLearner's reference numbers."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from treeaspp_depth_ros.losses import photo_and_geometry_loss, smooth_loss, ssim_loss_map
from treeaspp_depth_ros.view_synthesis import inverse_warp, normalize_image

RTOL = 1e-3


def _load_frame(folder: Path, index: int, size_hw):
    h, w = size_hw
    bgr = cv2.imread(str(folder / f'frame-{index:06d}.color.png'))
    rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_AREA)
    depth = cv2.imread(str(folder / f'frame-{index:06d}.depth.png'), cv2.IMREAD_UNCHANGED)
    depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float32) / 1000
    depth[depth == 0] = np.median(depth[depth > 0])
    img = normalize_image(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    return img, torch.from_numpy(depth)[None, None]


@pytest.fixture(scope='module')
def scene(shared_dir, reference_dir):
    ref = json.loads((reference_dir / 'losses_reference.json').read_text())
    folder = shared_dir / 'data' / '7scenes-redkitchen'
    size = ref['size_hw']
    tgt, tgt_depth = _load_frame(folder, ref['frames']['target'], size)
    refs = [_load_frame(folder, i, size) for i in ref['frames']['references']]
    K = torch.tensor(ref['intrinsics_scaled'], dtype=torch.float32)[None]
    poses = [torch.tensor(p, dtype=torch.float32)[None] for p in ref['poses_tgt_to_ref']]
    poses_inv = [torch.tensor(p, dtype=torch.float32)[None] for p in ref['poses_ref_to_tgt']]
    return {'ref': ref, 'tgt': tgt, 'tgt_depth': tgt_depth, 'refs': refs, 'K': K,
            'poses': poses, 'poses_inv': poses_inv}


def _losses(scene, auto_mask: bool, zero_pose: bool = False):
    poses = [p * 0 for p in scene['poses']] if zero_pose else scene['poses']
    poses_inv = [p * 0 for p in scene['poses_inv']] if zero_pose else scene['poses_inv']
    return photo_and_geometry_loss(
        scene['tgt'], [r[0] for r in scene['refs']], scene['K'], [scene['tgt_depth']],
        [[r[1]] for r in scene['refs']], poses, poses_inv, max_scales=1, with_ssim=True,
        with_mask=True, with_auto_mask=auto_mask, padding_mode='zeros',
        align_corners=False)  # the reference code's sampling convention


@pytest.mark.parametrize('name, auto_mask, zero_pose', [
    ('auto_mask_0', False, False), ('auto_mask_1', True, False),
    ('zero_pose_auto_mask_0', False, True)])
def test_photo_and_geometry_losses_match_reference(scene, name, auto_mask, zero_pose):
    photo, geometry = _losses(scene, auto_mask, zero_pose)
    expected = scene['ref']['results'][name]
    print(name, float(photo), expected['photo'], float(geometry), expected['geometry'])
    assert float(photo) == pytest.approx(expected['photo'], rel=RTOL)
    assert float(geometry) == pytest.approx(expected['geometry'], rel=RTOL)


def test_true_poses_explain_images_far_better_than_zero_poses(scene):
    photo_true, geometry_true = _losses(scene, auto_mask=False)
    photo_zero, geometry_zero = _losses(scene, auto_mask=False, zero_pose=True)
    assert float(photo_zero) > 1.3 * float(photo_true)
    assert float(geometry_zero) > 3 * float(geometry_true)


def test_smooth_loss_matches_reference(scene):
    value = smooth_loss([scene['tgt_depth']], scene['tgt'], [[r[1]] for r in scene['refs']],
                        [r[0] for r in scene['refs']])
    assert float(value) == pytest.approx(scene['ref']['results']['smooth'], rel=RTOL)


def test_ssim_and_warp_match_reference(scene, reference_dir):
    ref155_img, ref155_depth = scene['refs'][0]
    warped, valid, projected_depth, computed_depth = inverse_warp(
        ref155_img, scene['tgt_depth'], ref155_depth, scene['poses'][0], scene['K'],
        align_corners=False)
    expected = np.load(reference_dir / 'warp_155_to_160.npz')
    got = {'projected_img': warped[0], 'valid_mask': valid[0, 0],
           'projected_depth': projected_depth[0, 0], 'computed_depth': computed_depth[0, 0]}
    for key, value in got.items():
        want = expected[key].astype(np.float32)
        have = value.numpy()
        assert have.shape == want.shape, key
        scale = np.abs(want).max()
        assert np.abs(have - want).max() <= RTOL * scale, key
    ssim_mean = float(ssim_loss_map(scene['tgt'], warped).mean())
    assert ssim_mean == pytest.approx(
        scene['ref']['results']['ssim_loss_map_mean_tgt_vs_warped155'], rel=RTOL)
