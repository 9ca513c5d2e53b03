"""
DepthNet: ResNet-18 encoder, optional context pool, SC-SfMLearner decoder.

The three variants are the three rows of the paper's Table 1.
"""

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from .context import ASPP, DEFAULT_DILATION_RATES, TreeASPP
from .decoder import DepthDecoder
from .encoder import Pretrained, ResnetEncoder

VARIANTS = ('baseline', 'aspp', 'tree_aspp')
_CONTEXT_POOLS = {'aspp': ASPP, 'tree_aspp': TreeASPP}


class DepthNet(nn.Module):
    """Monocular disparity network; train mode gives 4 scales, eval mode scale 0 only."""

    def __init__(self, variant: str = 'tree_aspp', upsample_mode: str = 'nearest',
                 dilation_rates: Sequence[int] = DEFAULT_DILATION_RATES,
                 pretrained: Pretrained = None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f'unknown DepthNet variant {variant!r}; choose one of {VARIANTS}')
        self.variant = variant
        self.config: Dict[str, Any] = {
            'variant': variant, 'upsample_mode': upsample_mode,
            'dilation_rates': [int(r) for r in dilation_rates]}
        self.encoder = ResnetEncoder(pretrained)
        channels = self.encoder.num_ch_enc
        self.context: Optional[nn.Module] = None
        if variant in _CONTEXT_POOLS:
            self.context = _CONTEXT_POOLS[variant](channels[-1], dilation_rates)
        self.decoder = DepthDecoder(channels, upsample_mode)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, List[torch.Tensor]]:
        """Map a normalised image batch to disparity (depth = 1 / disparity)."""
        features = self.encoder(x)
        if self.context is not None:
            features[-1] = self.context(features[-1])
        outputs = self.decoder(features, all_scales=self.training)
        return outputs if self.training else outputs[0]


#: the keys of `DepthNet.config` (a checkpoint's ``model_config``), which `build_depth_net` takes
CONFIG_KEYS = ('variant', 'upsample_mode', 'dilation_rates')


def build_depth_net(config: Dict[str, Any]) -> DepthNet:
    """
    Recreate a DepthNet from the `config` dict stored in checkpoints.

    A key that is not one of `CONFIG_KEYS` is a ValueError (like a bad value), not dropped: a
    network built without a setting its weights were trained with would be silently wrong.
    """
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise ValueError(f'unknown DepthNet argument(s) {", ".join(map(repr, unknown))}; '
                         f'known: {", ".join(CONFIG_KEYS)}')
    return DepthNet(**config)
