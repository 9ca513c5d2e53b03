"""PoseNet: ResNet-18 on a stacked frame pair -> 6-DoF relative pose (SC-SfMLearner)."""

import torch
from torch import nn

from .encoder import Pretrained, ResnetEncoder

POSE_SCALE = 0.01


class PoseDecoder(nn.Module):
    """1x1 squeeze 512->256, two 3x3 256->256, 1x1 ->6, spatial mean, x0.01."""

    def __init__(self, in_channels: int = 512) -> None:
        super().__init__()
        self.net = nn.ModuleList([
            nn.Conv2d(in_channels, 256, 1),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, 6, 1),
        ])
        self.relu = nn.ReLU()

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = feature
        for index, conv in enumerate(self.net):
            x = conv(x)
            if index < len(self.net) - 1:
                x = self.relu(x)
        return POSE_SCALE * x.mean(dim=(2, 3))


class PoseNet(nn.Module):
    """Predict `[tx, ty, tz, rx, ry, rz]` mapping target-camera points into the reference."""

    def __init__(self, pretrained: Pretrained = None) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(pretrained, num_input_images=2)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1])

    def forward(self, target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(torch.cat([target, reference], 1))[-1])
