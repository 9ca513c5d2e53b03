"""Loss and metric building blocks with hand-computed answers."""

import numpy as np
import pytest
import torch

from treeaspp_depth_ros.losses import (edge_aware_smoothness, LossWeights, SelfSupervisedLoss,
                                       ssim_loss_map)
from treeaspp_depth_ros.metrics import (aggregate_metrics, compute_depth_metrics,
                                        eigen_crop_mask)


def test_ssim_of_identical_images_is_one_and_of_different_images_is_less():
    x = torch.rand(1, 3, 32, 32)
    assert float(ssim_loss_map(x, x).max()) == pytest.approx(0.0, abs=1e-6)  # (1 - SSIM) / 2
    assert float(ssim_loss_map(x, torch.rand(1, 3, 32, 32)).mean()) > 0.1


def test_smoothness_of_constant_depth_is_zero_and_scale_invariant():
    img = torch.rand(1, 3, 16, 16)
    assert float(edge_aware_smoothness(torch.full((1, 1, 16, 16), 4.0), img)) == 0.0
    depth = torch.rand(1, 1, 16, 16) + 1
    assert float(edge_aware_smoothness(depth, img)) == pytest.approx(
        float(edge_aware_smoothness(depth * 7, img)), rel=1e-5)


def test_total_loss_uses_weights():
    torch.manual_seed(0)
    tgt, ref = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    K = torch.tensor([[[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]])
    depth = [torch.rand(1, 1, 64, 64) + 1]
    pose = [torch.zeros(1, 6)]
    total, parts = SelfSupervisedLoss(LossWeights(1.0, 0.1, 0.5))(
        tgt, [ref], K, depth, [depth], pose, pose)
    expected = parts['photo'] + 0.1 * parts['smooth'] + 0.5 * parts['geometry']
    assert float(total) == pytest.approx(float(expected), rel=1e-6)


def test_metrics_hand_computed():
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # 0 = invalid
    pred = np.array([[1.0, 2.5], [2.0, 9.0]])
    m = compute_depth_metrics(pred, gt, min_depth=0.1, max_depth=10.0, scale=1.0)
    assert m['valid_pixels'] == 3
    assert m['abs_rel'] == pytest.approx((0 + 0.25 + 0.5) / 3)
    assert m['sq_rel'] == pytest.approx((0 + 0.25 / 2 + 4 / 4) / 3)
    assert m['rmse'] == pytest.approx(np.sqrt((0 + 0.25 + 4) / 3))
    assert m['log10'] == pytest.approx((0 + np.log10(1.25) + np.log10(2)) / 3)
    # ratios 1, 1.25, 2: only 1 is < 1.25; 1.25 < 1.5625; 2 > 1.953 (= 1.25 ** 3)
    assert m['a1'] == pytest.approx(1 / 3)
    assert m['a2'] == pytest.approx(2 / 3)
    assert m['a3'] == pytest.approx(2 / 3)


def test_median_scaling_removes_a_global_scale_and_global_scale_does_not():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 8, (48, 64))
    median = compute_depth_metrics(gt / 3.7, gt, scale='median')
    assert median['abs_rel'] == pytest.approx(0.0, abs=1e-12)
    assert median['scale'] == pytest.approx(3.7)
    assert compute_depth_metrics(gt / 3.7, gt, scale=1.0)['abs_rel'] > 0.5
    assert aggregate_metrics([median, median])['a1'] == 1.0


def test_eigen_crop_and_depth_range():
    mask = eigen_crop_mask(480, 640)
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and not mask[44, 41] and not mask[45, 601]
    assert eigen_crop_mask(240, 320).sum() == (236 - 22) * (300 - 20)  # rounded half-size
    gt = np.full((480, 640), 5.0)
    gt[:10] = 12.0  # outside NYU's 10 m range
    m = compute_depth_metrics(np.full_like(gt, 5.0), gt, crop=None, scale=1.0)
    assert m['valid_pixels'] == 470 * 640
    m = compute_depth_metrics(np.full_like(gt, 5.0), gt, crop='eigen', scale=1.0)
    assert m['valid_pixels'] == mask.sum()
    with pytest.raises(ValueError, match='no valid ground-truth'):
        compute_depth_metrics(np.ones((4, 4)), np.zeros((4, 4)))


def test_normalised_depth_makes_the_loss_blind_to_the_depth_networks_global_scale():
    torch.manual_seed(0)
    tgt, ref = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    K = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]).expand(2, 3, 3)
    tgt_depth, ref_depth = torch.rand(2, 1, 64, 64) + 1, torch.rand(2, 1, 64, 64) + 1
    pose = torch.tensor([[0.01, 0.0, 0.02, 0.0, 0.01, 0.0]]).repeat(2, 1)

    def total(depth_factor: float, normalize: bool) -> float:
        loss = SelfSupervisedLoss(normalize_depth=normalize, reference_depth=0.2)
        value, _ = loss(tgt, [ref], K, [tgt_depth * depth_factor], [[ref_depth * depth_factor]],
                        [pose], [-pose])
        return float(value)
    # SC-SfMLearner's loss: farther depth means less parallax, a different photometric error
    assert total(10.0, False) != pytest.approx(total(1.0, False), rel=1e-3)
    assert total(10.0, True) == pytest.approx(total(1.0, True), rel=1e-5)
