"""
SC-SfMLearner's disparity decoder (monodepth2 layout), with a selectable upsampling mode.

Module order inside ``self.decoder`` matches SC-SfMLearner checkpoints
(``decoder.decoder.N``): upconv(4,0), upconv(4,1), ..., upconv(0,1), dispconv(0..3).
"""

from typing import List, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .blocks import Conv3x3, ConvBlock

DECODER_CHANNELS = (16, 32, 64, 128, 256)
UPSAMPLE_MODES = ('nearest', 'bilinear')
#: disparity scales of a DepthNet in train mode: 1, 1/2, 1/4 and 1/8 of the input
NUM_SCALES = 4
DISP_ALPHA = 10.0
DISP_BETA = 0.01


def initial_depth() -> float:
    """Depth an untrained decoder predicts (sigmoid output 0.5), in network units."""
    return 1.0 / (DISP_ALPHA * 0.5 + DISP_BETA)


class DepthDecoder(nn.Module):
    """Decode five encoder feature maps into disparity at four scales."""

    def __init__(self, num_ch_enc: Sequence[int], upsample_mode: str = 'nearest',
                 num_scales: int = NUM_SCALES) -> None:
        super().__init__()
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f'upsample_mode must be one of {UPSAMPLE_MODES}, got '
                             f'{upsample_mode!r}')
        self.upsample_mode = upsample_mode
        self.num_scales = num_scales
        ch_dec = DECODER_CHANNELS
        modules = []
        for i in range(4, -1, -1):
            ch_in = num_ch_enc[-1] if i == 4 else ch_dec[i + 1]
            modules.append(ConvBlock(ch_in, ch_dec[i]))
            ch_in = ch_dec[i] + (num_ch_enc[i - 1] if i > 0 else 0)
            modules.append(ConvBlock(ch_in, ch_dec[i]))
        modules += [Conv3x3(ch_dec[s], 1) for s in range(num_scales)]
        self.decoder = nn.ModuleList(modules)

    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample_mode == 'nearest':
            return F.interpolate(x, scale_factor=2, mode='nearest')
        return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)

    def forward(self, features: List[torch.Tensor], all_scales: bool = True
                ) -> List[torch.Tensor]:
        """Return disparities, finest first; only scale 0 unless `all_scales`."""
        x = features[-1]
        outputs = []
        for step, i in enumerate(range(4, -1, -1)):
            x = self._upsample(self.decoder[2 * step](x))
            if i > 0:
                x = torch.cat([x, features[i - 1]], 1)
            x = self.decoder[2 * step + 1](x)
            if i < self.num_scales and (all_scales or i == 0):
                disp_conv = self.decoder[10 + i]
                outputs.append(DISP_ALPHA * torch.sigmoid(disp_conv(x)) + DISP_BETA)
        return outputs[::-1]
