"""Geometry with analytic answers: identity warps, a fronto-parallel plane, Euler convention."""

import numpy as np
import pytest
import torch

from treeaspp_depth_ros.pinhole import depth_to_points, scale_intrinsics
from treeaspp_depth_ros.view_synthesis import (backproject, euler2mat, inverse_warp,
                                               mat2pose_vec, pose_vec2mat)

K = torch.tensor([[[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]]])


def _texture(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.random((3, h // 4, w // 4)).astype(np.float32)
    img = torch.from_numpy(coarse)[None]
    return torch.nn.functional.interpolate(img, size=(h, w), mode='bilinear',
                                           align_corners=False)


def test_identity_pose_warps_an_image_onto_itself():
    img = _texture()
    depth = torch.full((1, 1, 48, 64), 2.0) + torch.rand(1, 1, 48, 64)
    warped, valid, projected_depth, computed_depth = inverse_warp(
        img, depth, depth, torch.zeros(1, 6), K)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.allclose(warped[inner], img[inner], atol=1e-4)
    assert valid[inner].min() == 1
    # SC-SfMLearner's own convention (align_corners=False) is off by a sub-pixel stretch
    stretched = inverse_warp(img, depth, depth, torch.zeros(1, 6), K, align_corners=False)[0]
    assert (stretched[inner] - img[inner]).abs().max() > 1e-2
    assert torch.allclose(computed_depth, depth, rtol=1e-5)
    assert torch.allclose(projected_depth[inner], depth[inner], rtol=1e-4)


def test_translated_fronto_parallel_plane_is_reconstructed():
    # The reference camera sits 0.1 m to the right (x) of the target camera, both looking at a
    # plane at Z = 2 m. A target pixel (u, v) sees the reference pixel u - fx * tx / Z.
    plane = 2.0
    shift_px = 60.0 * 0.1 / plane  # 3 pixels
    h, w = 48, 64
    reference = _texture(h, w)
    u = torch.arange(w, dtype=torch.float32)
    grid_x = (2 * (u - shift_px) / (w - 1) - 1).view(1, 1, w).expand(1, h, w)
    v = torch.arange(h, dtype=torch.float32)
    grid_y = (2 * v / (h - 1) - 1).view(1, h, 1).expand(1, h, w)
    target = torch.nn.functional.grid_sample(reference, torch.stack([grid_x, grid_y], -1),
                                             align_corners=True)
    depth = torch.full((1, 1, h, w), plane)
    pose = torch.tensor([[-0.1, 0.0, 0.0, 0.0, 0.0, 0.0]])  # target->reference: x' = x - 0.1
    warped, valid, _, computed = inverse_warp(reference, depth, depth, pose, K)
    region = (slice(None), slice(None), slice(2, -2), slice(6, -2))
    assert torch.allclose(warped[region], target[region], atol=1e-4)
    assert valid[..., :, :3].sum() == 0  # pixels that leave the reference view are invalid
    assert torch.allclose(computed, depth)
    wrong = inverse_warp(reference, depth, depth, torch.zeros(1, 6), K)[0]
    assert (wrong[region] - target[region]).abs().mean() > 10 * (
        warped[region] - target[region]).abs().mean()


def test_pose_vec2mat_uses_rx_ry_rz_order_and_round_trips():
    vec = torch.tensor([[0.1, -0.2, 0.3, 0.05, -0.1, 0.2]], dtype=torch.float64)
    mat = pose_vec2mat(vec)[0].numpy()
    rx, ry, rz = 0.05, -0.1, 0.2
    Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    Rz = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    assert np.allclose(mat[:, :3], Rx @ Ry @ Rz)
    assert np.allclose(mat[:, 3], [0.1, -0.2, 0.3])
    assert np.allclose(mat2pose_vec(mat), vec[0].numpy())
    assert torch.allclose(euler2mat(torch.zeros(1, 3)), torch.eye(3)[None])


def test_backprojection_and_depth_to_points_agree_and_keep_nan():
    depth = np.full((48, 64), 3.0, dtype=np.float32)
    depth[5, 7] = np.nan
    points = depth_to_points(depth, K[0].numpy())
    assert points.shape == (48, 64, 3) and points.dtype == np.float32
    assert np.isnan(points[5, 7]).all()
    assert np.allclose(points[10, 20], [(20 - 31.5) / 60 * 3, (10 - 23.5) / 60 * 3, 3.0])
    torch_points = backproject(torch.full((1, 1, 48, 64), 3.0), torch.inverse(K))
    assert np.allclose(torch_points[0].permute(1, 2, 0).numpy()[10, 20], points[10, 20],
                       atol=1e-5)


def test_scale_intrinsics_numpy_and_torch():
    k = np.array([[585.0, 0, 320], [0, 585, 240], [0, 0, 1]])
    scaled = scale_intrinsics(k, 0.5, 256 / 480)
    assert scaled[0, 0] == pytest.approx(292.5) and scaled[1, 2] == pytest.approx(128.0)
    assert k[0, 0] == 585.0  # input untouched
    assert torch.allclose(scale_intrinsics(torch.from_numpy(k), 0.5, 0.5)[0],
                          torch.tensor([292.5, 0.0, 160.0], dtype=torch.float64))
