"""Checkpoint files are readable by the users the umask allows, and keep their mode."""

import os

from treeaspp_depth_ros.checkpoint import save_checkpoint
from treeaspp_depth_ros.model import DepthNet


def test_new_checkpoint_follows_the_umask_and_a_rewrite_keeps_the_mode(tmp_path):
    net = DepthNet('baseline')
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / 'a.pth', net)
        assert path.stat().st_mode & 0o777 == 0o644  # a service account can read it
        os.chmod(path, 0o640)
        save_checkpoint(path, net, depth_scale=2.0)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temporary left
