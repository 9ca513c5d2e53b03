"""The depth and pose networks as one module, so DDP, AMP and checkpoints treat them together."""

from typing import Any, Dict, List, Tuple
import warnings

import torch
from torch import nn

from treeaspp_depth_ros.model import DepthNet, PoseNet


class SfMModel(nn.Module):
    """Depth for the target and its references in one batch, poses in both directions."""

    def __init__(self, depth_net: DepthNet, pose_net: PoseNet, channels_last: bool = False
                 ) -> None:
        super().__init__()
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, tgt: torch.Tensor, refs: torch.Tensor
                ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """
        Disparities of ``[tgt; ref_1; ...; ref_R]`` per scale and ``[2RB, 6]`` poses.

        Poses are ordered tgt->ref_1, ..., tgt->ref_R, ref_1->tgt, ..., ref_R->tgt.
        """
        b, r = refs.shape[:2]
        ref_flat = refs.transpose(0, 1).reshape(r * b, *refs.shape[2:])
        frames = torch.cat([tgt, ref_flat]).contiguous(memory_format=self.memory_format)
        disparities = self.depth_net(frames)
        if not isinstance(disparities, list):  # eval mode: finest scale only
            disparities = [disparities]
        tgt_rep = tgt.repeat(r, 1, 1, 1)
        first = torch.cat([tgt_rep, ref_flat]).contiguous(memory_format=self.memory_format)
        second = torch.cat([ref_flat, tgt_rep]).contiguous(memory_format=self.memory_format)
        poses = self.pose_net(first, second)
        return disparities, poses


#: ``model.pretrained`` values that are not a path: random initialisation (null in YAML),
#: ImageNet weights when obtainable, ImageNet weights (torchvision's download)
PRETRAINED_WORDS = ('none', 'auto', 'imagenet')
#: the spellings of "no pretrained weights" (any case)
NO_PRETRAINED = ('none', 'null', '')


def _pretrained_source(name: Any) -> Any:
    if name is None or str(name).lower() in NO_PRETRAINED:
        return None
    return name


def build_networks(model_config: Dict[str, Any]) -> Tuple[DepthNet, PoseNet]:
    """Depth and pose networks; ``pretrained: auto`` uses ImageNet weights when obtainable."""
    source = _pretrained_source(model_config['pretrained'])
    kwargs = {'variant': model_config['variant'],
              'upsample_mode': model_config['upsample_mode'],
              'dilation_rates': model_config['dilation_rates']}
    head_init = model_config['pose_head_init']
    if source == 'auto':
        try:
            return (DepthNet(pretrained='imagenet', **kwargs),
                    PoseNet(pretrained='imagenet', head_init=head_init))
        except Exception as error:  # noqa: B902 - offline: URLError, HTTPError, OSError ...
            warnings.warn(f'ImageNet weights unavailable ({type(error).__name__}); training '
                          f'from random initialisation')
            return DepthNet(pretrained=None, **kwargs), PoseNet(head_init=head_init)
    try:
        return (DepthNet(pretrained=source, **kwargs),
                PoseNet(pretrained=source, head_init=head_init))
    except (OSError, RuntimeError) as error:
        raise RuntimeError(
            f'cannot load pretrained encoder weights {source!r}: {error}. Offline, pass a local '
            f'torchvision resnet18 state_dict (--model.pretrained /path/resnet18.pth), '
            f'"auto" (ImageNet when available) or null (random init).') from None
