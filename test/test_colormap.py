"""The colour bar matches the depth colour map it labels."""

import numpy as np
from treeaspp_depth_ros.conversions.colormap import colorize_depth, depth_colorbar


def test_colorbar_runs_from_near_at_the_top_to_far_at_the_bottom_in_the_same_colours():
    low, high = 0.8, 6.3
    bar = depth_colorbar(480, low, high, width=96)
    assert bar.shape == (480, 96, 3) and bar.dtype == np.uint8
    column = bar[:, 2].astype(int)
    painted = np.flatnonzero((column != 255).any(axis=1))
    top, bottom = column[painted[0]], column[painted[-1]]
    near, far = colorize_depth(np.array([[low, high]]), low, high)[0].astype(int)
    assert np.abs(top - near).max() <= 2 and np.abs(bottom - far).max() <= 2
    assert len(painted) > 400  # the bar spans the height


def test_colorbar_labels_the_ends_of_its_range():
    bar = depth_colorbar(480, 0.8, 6.3, width=96)
    labels = bar[:, 30:]
    ink_rows = np.flatnonzero((labels < 128).all(axis=2).any(axis=1))
    assert ink_rows.size and ink_rows[0] < 40 and ink_rows[-1] > 440
    # different ranges label differently
    assert not np.array_equal(bar, depth_colorbar(480, 1.2, 2.5, width=96))
