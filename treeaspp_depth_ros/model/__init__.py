"""Networks: the depth network (three Table 1 variants) and the pose network."""

from .context import ASPP, DEFAULT_DILATION_RATES, TreeASPP
from .decoder import UPSAMPLE_MODES
from .depth_net import build_depth_net, DepthNet, VARIANTS
from .pose_net import PoseNet

__all__ = ['ASPP', 'DEFAULT_DILATION_RATES', 'DepthNet', 'PoseNet', 'TreeASPP',
           'UPSAMPLE_MODES', 'VARIANTS', 'build_depth_net']
