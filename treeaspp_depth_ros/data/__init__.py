"""
Dataset reading shared by the bag tools, the demo and training; no ROS, no PyTorch.

One module per job: `records` (the `Dataset`/`Frame` every reader returns), `files` and
`images` (listing in natural frame order, reading RGB and depth), `intrinsics` (camera matrices
and the one intrinsics-file parser), `association` (pairing timestamps), `poses` (quaternions,
pose files), a reader per layout (`folder`, `nyu`, `tum`, `seven_scenes`, `sc_depth`,
`bag_dataset`), `rosbag` (rosbag2 reading shared with the bag tools: only it needs rosbags and
the ROS messages, and only when a bag is read), `layouts` (dispatch by name) and `synthetic`
(procedural rooms with exact depth). Every failure is a :class:`DataError` naming the file.
Nothing here imports the bag tools or the CLI (test_layering).
"""

from .errors import DataError

__all__ = ['DataError']
