"""
Torch camera geometry for view synthesis (training, losses), and the network's input scaling.

The numpy pinhole maths that the node and message conversion use (rays, points, resized
intrinsics) is in :mod:`.pinhole`, which does not import torch.

Conventions follow SC-SfMLearner: pixel grids normalised as ``2*x/(W-1) - 1``, projected Z
clamped at 1e-3, out-of-view samples pushed to 2 under zero padding, Euler poses with
R = Rx @ Ry @ Rz. One deliberate difference: SC-SfMLearner samples that grid with
``align_corners=False``, which stretches the warp by half a pixel at the borders (an identity pose
does not reproduce the image). We sample with ``align_corners=True`` by default, which is exact
for that normalisation; ``align_corners=False`` reproduces the reference code bit for bit.
"""

from functools import lru_cache
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_MEAN = 0.45
IMAGE_STD = 0.225
#: how warping samples outside the reference image (``F.grid_sample``'s padding modes)
PADDING_MODES = ('zeros', 'border', 'reflection')


def normalize_image(rgb: torch.Tensor) -> torch.Tensor:
    """Network input from a uint8 (0..255) or float (0..1) NCHW/CHW image."""
    if rgb.dtype == torch.uint8:
        rgb = rgb.float() / 255.0
    return (rgb - IMAGE_MEAN) / IMAGE_STD


def denormalize_image(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize_image`, to [0, 1] floats (for logging and visualisation)."""
    return (x * IMAGE_STD + IMAGE_MEAN).clamp(0.0, 1.0)


def euler2mat(angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices R = Rx @ Ry @ Rz from `[B, 3]` angles (rx, ry, rz) in radians."""
    x, y, z = angle[:, 0], angle[:, 1], angle[:, 2]
    zeros = torch.zeros_like(z)
    ones = torch.ones_like(z)
    cz, sz = torch.cos(z), torch.sin(z)
    cy, sy = torch.cos(y), torch.sin(y)
    cx, sx = torch.cos(x), torch.sin(x)
    rz = torch.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], 1).view(-1, 3, 3)
    rx = torch.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], 1).view(-1, 3, 3)
    return rx @ ry @ rz


def pose_vec2mat(vec: torch.Tensor) -> torch.Tensor:
    """`[B, 6]` pose vectors (t, euler) to `[B, 3, 4]` transforms [R | t]."""
    return torch.cat([euler2mat(vec[:, 3:]), vec[:, :3].unsqueeze(-1)], dim=2)


def mat2pose_vec(transform: np.ndarray) -> np.ndarray:
    """Inverse of `pose_vec2mat` for one 4x4 (or 3x4) numpy transform (for ground-truth poses)."""
    R = np.asarray(transform, dtype=np.float64)[:3, :3]
    t = np.asarray(transform, dtype=np.float64)[:3, 3]
    # R = Rx Ry Rz  =>  R[0,2] = sin(ry), R[0,1] = -cos(ry) sin(rz), R[1,2] = -sin(rx) cos(ry)
    ry = np.arcsin(np.clip(R[0, 2], -1.0, 1.0))
    rz = np.arctan2(-R[0, 1], R[0, 0])
    rx = np.arctan2(-R[1, 2], R[2, 2])
    return np.array([t[0], t[1], t[2], rx, ry, rz], dtype=np.float64)


def pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype
               ) -> torch.Tensor:
    """Homogeneous pixel coordinates `[1, 3, H*W]` (u, v, 1), cached per size and device."""
    return _pixel_grid(height, width, str(device), dtype)


@lru_cache(maxsize=16)
def _pixel_grid(height: int, width: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing='ij')
    return torch.stack([u, v, torch.ones_like(u)]).view(1, 3, -1)


def backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Camera-frame points `[B, 3, H, W]` of every pixel of a `[B, 1, H, W]` depth map."""
    b, _, h, w = depth.shape
    rays = K_inv @ pixel_grid(h, w, depth.device, depth.dtype)
    return rays.view(-1, 3, h, w) * depth


def project(points: torch.Tensor, K: torch.Tensor, pose_mat: torch.Tensor,
            padding_mode: str = 'zeros') -> Tuple[torch.Tensor, torch.Tensor]:
    """Project camera points through [R | t] and K to a normalised sampling grid and depth."""
    b, _, h, w = points.shape
    proj = K @ pose_mat
    pcoords = proj[:, :, :3] @ points.reshape(b, 3, -1) + proj[:, :, 3:]
    z = pcoords[:, 2].clamp(min=1e-3)
    x_norm = 2 * (pcoords[:, 0] / z) / (w - 1) - 1
    y_norm = 2 * (pcoords[:, 1] / z) / (h - 1) - 1
    if padding_mode == 'zeros':
        x_norm = torch.where((x_norm > 1) | (x_norm < -1), torch.full_like(x_norm, 2), x_norm)
        y_norm = torch.where((y_norm > 1) | (y_norm < -1), torch.full_like(y_norm, 2), y_norm)
    grid = torch.stack([x_norm, y_norm], dim=2).view(b, h, w, 2)
    return grid, z.view(b, 1, h, w)


def depth_inconsistency(computed_depth: torch.Tensor, projected_depth: torch.Tensor
                        ) -> torch.Tensor:
    """
    SC-SfMLearner's depth disagreement ``|Dc - Dp| / (Dc + Dp)`` in [0, 1] (eq. 3).

    The geometry-consistency loss, its self-discovered mask and the node's confidence all
    read the same measure, so the confidence says what training optimised.
    """
    return ((computed_depth - projected_depth).abs()
            / (computed_depth + projected_depth)).clamp(0, 1)


def inverse_warp(img: torch.Tensor, depth: torch.Tensor, ref_depth: torch.Tensor,
                 pose: torch.Tensor, K: torch.Tensor, padding_mode: str = 'zeros',
                 align_corners: bool = True
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Synthesise the target view from a reference image.

    `img`/`ref_depth` are the reference image and depth, `depth` the target depth, `pose` the
    `[B, 6]` target-to-reference motion. Returns the warped image, the valid mask, the reference
    depth sampled at the projections and the target points' depth in the reference camera.
    """
    points = backproject(depth, torch.inverse(K))
    grid, computed_depth = project(points, K, pose_vec2mat(pose), padding_mode)
    projected_img = F.grid_sample(img, grid, padding_mode=padding_mode,
                                  align_corners=align_corners)
    valid_mask = (grid.abs().amax(dim=-1) <= 1).unsqueeze(1).to(img.dtype)
    projected_depth = F.grid_sample(ref_depth, grid, padding_mode=padding_mode,
                                    align_corners=align_corners)
    return projected_img, valid_mask, projected_depth, computed_depth
