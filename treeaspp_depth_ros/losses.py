"""
Self-supervised losses of the paper (eq. 1-4), as formulated by SC-SfMLearner.

L = alpha * L_p^M + beta * L_s + gamma * L_GC, summed over both directions of every
target/reference pair. Images are in the network's normalised space (as in the reference).
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from .view_synthesis import depth_inconsistency, inverse_warp

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2
#: a pair contributes only when more masked values than this fraction of one image's pixels
#: are valid (SC-SfMLearner: 10000 at 320x256, ~12%; relative so small images work too)
MIN_VALID_FRACTION = 10000.0 / (320 * 256)


@dataclass(frozen=True)
class LossWeights:
    """Weights (alpha, beta, gamma); defaults are SC-SfMLearner's NYUv2 setting."""

    photo: float = 1.0
    smooth: float = 0.1
    geometry: float = 0.5


def ssim_loss_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel `clamp((1 - SSIM) / 2, 0, 1)` with 3x3 windows and reflection padding."""
    x = F.pad(x, (1, 1, 1, 1), mode='reflect')
    y = F.pad(y, (1, 1, 1, 1), mode='reflect')
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x * mu_x
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y * mu_y
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def mean_on_mask(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over `mask`; zero when too few pixels are valid to be meaningful."""
    mask = mask.expand_as(values)
    count = mask.sum()
    if count <= MIN_VALID_FRACTION * mask.shape[-2] * mask.shape[-1]:
        return values.sum() * 0.0
    return (values * mask).sum() / count


def pairwise_loss(tgt_img: torch.Tensor, ref_img: torch.Tensor, tgt_depth: torch.Tensor,
                  ref_depth: torch.Tensor, pose: torch.Tensor, K: torch.Tensor,
                  with_ssim: bool = True, with_mask: bool = True, with_auto_mask: bool = False,
                  padding_mode: str = 'zeros', align_corners: bool = True
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Masked photometric loss (eq. 2) and geometry consistency loss (eq. 4) of one direction."""
    warped, valid, projected_depth, computed_depth = inverse_warp(
        ref_img, tgt_depth, ref_depth, pose, K, padding_mode, align_corners)
    diff_img = (tgt_img - warped).abs().clamp(0, 1)
    diff_depth = depth_inconsistency(computed_depth, projected_depth)
    if with_auto_mask:
        static = (diff_img.mean(1, keepdim=True)
                  < (tgt_img - ref_img).abs().mean(1, keepdim=True)).to(valid.dtype)
        valid = static * valid
    if with_ssim:
        diff_img = 0.15 * diff_img + 0.85 * ssim_loss_map(tgt_img, warped)
    if with_mask:
        diff_img = diff_img * (1 - diff_depth)
    return mean_on_mask(diff_img, valid), mean_on_mask(diff_depth, valid)


def photo_and_geometry_loss(tgt_img: torch.Tensor, ref_imgs: Sequence[torch.Tensor],
                            K: torch.Tensor, tgt_depths: Sequence[torch.Tensor],
                            ref_depths: Sequence[Sequence[torch.Tensor]],
                            poses: Sequence[torch.Tensor], poses_inv: Sequence[torch.Tensor],
                            max_scales: int = 1, with_ssim: bool = True, with_mask: bool = True,
                            with_auto_mask: bool = False, padding_mode: str = 'zeros',
                            align_corners: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sum both losses over references, scales (upsampled to full size) and both directions."""
    h, w = tgt_img.shape[-2:]
    photo = tgt_img.new_zeros(())
    geometry = tgt_img.new_zeros(())
    num_scales = min(len(tgt_depths), max_scales)
    options = {'with_ssim': with_ssim, 'with_mask': with_mask, 'with_auto_mask': with_auto_mask,
               'padding_mode': padding_mode, 'align_corners': align_corners}
    for ref_img, ref_depth, pose, pose_inv in zip(ref_imgs, ref_depths, poses, poses_inv):
        for s in range(num_scales):
            tgt_d, ref_d = tgt_depths[s], ref_depth[s]
            if tgt_d.shape[-2:] != (h, w):
                tgt_d = F.interpolate(tgt_d, (h, w), mode='nearest')
                ref_d = F.interpolate(ref_d, (h, w), mode='nearest')
            photo1, geometry1 = pairwise_loss(tgt_img, ref_img, tgt_d, ref_d, pose, K, **options)
            photo2, geometry2 = pairwise_loss(ref_img, tgt_img, ref_d, tgt_d, pose_inv, K,
                                              **options)
            photo = photo + photo1 + photo2
            geometry = geometry + geometry1 + geometry2
    return photo, geometry


def edge_aware_smoothness(depth: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Eq. 3 on mean-normalised depth: gradients are cheap where the image has edges."""
    depth = depth / (depth.mean(dim=(2, 3), keepdim=True) + 1e-7)
    grad_x = (depth[:, :, :, :-1] - depth[:, :, :, 1:]).abs()
    grad_y = (depth[:, :, :-1, :] - depth[:, :, 1:, :]).abs()
    img_grad_x = (img[:, :, :, :-1] - img[:, :, :, 1:]).abs().mean(1, keepdim=True)
    img_grad_y = (img[:, :, :-1, :] - img[:, :, 1:, :]).abs().mean(1, keepdim=True)
    return (grad_x * torch.exp(-img_grad_x)).mean() + (grad_y * torch.exp(-img_grad_y)).mean()


def smooth_loss(tgt_depths: Sequence[torch.Tensor], tgt_img: torch.Tensor,
                ref_depths: Sequence[Sequence[torch.Tensor]],
                ref_imgs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Smoothness of the finest depth of the target and of every reference frame."""
    loss = edge_aware_smoothness(tgt_depths[0], tgt_img)
    for ref_depth, ref_img in zip(ref_depths, ref_imgs):
        loss = loss + edge_aware_smoothness(ref_depth[0], ref_img)
    return loss


def normalize_depth_scale(tgt_depths: Sequence[torch.Tensor],
                          ref_depths: Sequence[Sequence[torch.Tensor]], reference_depth: float
                          ) -> Tuple[List[torch.Tensor], List[List[torch.Tensor]]]:
    """
    Rescale each sample's depths (target and references together) to a fixed mean.

    One factor per sample keeps the frames' relative scale, which the geometry term needs; the
    factor is not detached, so the loss no longer depends on the depth network's global scale
    at all and the network cannot lower the photometric error by pushing depth to infinity.
    """
    finest = torch.cat([tgt_depths[0]] + [ref[0] for ref in ref_depths], 1)
    factor = reference_depth / finest.mean(dim=(1, 2, 3), keepdim=True)
    return ([d * factor for d in tgt_depths],
            [[d * factor for d in ref] for ref in ref_depths])


class SelfSupervisedLoss(nn.Module):
    """
    The total training objective; returns the weighted sum and its (detached) parts.

    ``normalize_depth`` (not in SC-SfMLearner; off by default) divides depth by its per-sample
    mean before the warp, times ``reference_depth``: see `normalize_depth_scale`.
    """

    def __init__(self, weights: LossWeights = LossWeights(), *, with_ssim: bool = True,
                 with_mask: bool = True, with_auto_mask: bool = False,
                 padding_mode: str = 'zeros', max_scales: int = 1,
                 align_corners: bool = True, normalize_depth: bool = False,
                 reference_depth: float = 1.0) -> None:
        super().__init__()
        self.weights = weights
        self.normalize_depth = normalize_depth
        self.reference_depth = reference_depth
        self.options = {'with_ssim': with_ssim, 'with_mask': with_mask,
                        'with_auto_mask': with_auto_mask, 'padding_mode': padding_mode,
                        'max_scales': max_scales, 'align_corners': align_corners}

    def forward(self, tgt_img: torch.Tensor, ref_imgs: List[torch.Tensor], K: torch.Tensor,
                tgt_depths: List[torch.Tensor], ref_depths: List[List[torch.Tensor]],
                poses: List[torch.Tensor], poses_inv: List[torch.Tensor]
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        if self.normalize_depth:
            tgt_depths, ref_depths = normalize_depth_scale(tgt_depths, ref_depths,
                                                           self.reference_depth)
        photo, geometry = photo_and_geometry_loss(tgt_img, ref_imgs, K, tgt_depths, ref_depths,
                                                  poses, poses_inv, **self.options)
        smooth = smooth_loss(tgt_depths, tgt_img, ref_depths, ref_imgs)
        w = self.weights
        total = w.photo * photo + w.smooth * smooth + w.geometry * geometry
        parts = {'photo': photo.detach(), 'smooth': smooth.detach(),
                 'geometry': geometry.detach()}
        return total, parts
