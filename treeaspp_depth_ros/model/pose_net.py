"""PoseNet: ResNet-18 on a stacked frame pair -> 6-DoF relative pose (SC-SfMLearner)."""

import torch
from torch import nn

from .encoder import Pretrained, ResnetEncoder

POSE_SCALE = 0.01
#: how the pose decoder starts: ``torch`` (PyTorch's default, as SC-SfMLearner) or
#: ``identity`` (He-initialised hidden layers, zero output layer: see `PoseDecoder`)
POSE_HEAD_INITS = ('torch', 'identity')


class PoseDecoder(nn.Module):
    """
    1x1 squeeze 512->256, two 3x3 256->256, 1x1 ->6, spatial mean, x0.01.

    With PyTorch's default initialisation each ReLU layer shrinks its activations (weight
    variance 1/(3 fan_in) where ReLU keeps magnitude at 2/fan_in), so the features reaching the
    output layer are an order of magnitude smaller than the encoder's, and every optimiser step
    moves the predicted translation that much less. From scratch, the depth network then learns
    against a pose that hardly moves, and some runs settle on "no motion". ``identity`` starts
    with He-initialised hidden layers (activations keep the encoder's magnitude) and a zero
    output layer (the identity pose, so no random motion has to be explained away first).
    """

    def __init__(self, in_channels: int = 512, init: str = 'torch') -> None:
        super().__init__()
        if init not in POSE_HEAD_INITS:
            raise ValueError(f'pose head init must be one of {POSE_HEAD_INITS}, got {init!r}')
        self.net = nn.ModuleList([
            nn.Conv2d(in_channels, 256, 1),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.Conv2d(256, 6, 1),
        ])
        self.relu = nn.ReLU()
        if init == 'identity':
            for conv in self.net[:-1]:
                nn.init.kaiming_normal_(conv.weight, nonlinearity='relu')
                nn.init.zeros_(conv.bias)
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = feature
        for index, conv in enumerate(self.net):
            x = conv(x)
            if index < len(self.net) - 1:
                x = self.relu(x)
        return POSE_SCALE * x.mean(dim=(2, 3))


class PoseNet(nn.Module):
    """Predict `[tx, ty, tz, rx, ry, rz]` mapping target-camera points into the reference."""

    def __init__(self, pretrained: Pretrained = None, head_init: str = 'torch') -> None:
        super().__init__()
        self.encoder = ResnetEncoder(pretrained, num_input_images=2)
        self.decoder = PoseDecoder(self.encoder.num_ch_enc[-1], init=head_init)

    def forward(self, target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(torch.cat([target, reference], 1))[-1])
