"""ResNet-18 encoder returning the five feature maps the depth decoder needs (1/2 ... 1/32)."""

from pathlib import Path
from typing import Any, List, Optional, Union

import torch
from torch import nn

from ..safe_load import torch_load_reason

#: channels of the feature maps at 1/2, 1/4, 1/8, 1/16, 1/32
RESNET18_CHANNELS = (64, 64, 128, 256, 512)

Pretrained = Optional[Union[str, Path]]


def load_resnet18(pretrained: Pretrained = None) -> Any:
    """
    Build torchvision's resnet18 (a ``torchvision.models.ResNet``), optionally ImageNet's.

    `pretrained='imagenet'` goes through torchvision's weights API (which downloads once into
    the torch hub cache); a path loads a local state_dict, so offline machines can use a copy.
    torchvision is imported here, when a network is built: importing it costs seconds, which
    every command that only names the variants (``train --help``) would otherwise pay.
    """
    import torchvision
    if pretrained is None:
        return torchvision.models.resnet18(weights=None)
    if str(pretrained).lower() == 'imagenet':
        return torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.DEFAULT)
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f'ImageNet weights file not found: {path}')
    model = torchvision.models.resnet18(weights=None)
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: B902 - torch raises many kinds for a bad file
        raise ValueError(f'ImageNet weights file {path} cannot be read as weights: '
                         f'{torch_load_reason(error)}') from None
    model.load_state_dict(state.get('state_dict', state) if isinstance(state, dict) else state)
    return model


class ResnetEncoder(nn.Module):
    """ResNet-18 feature pyramid; `num_input_images=2` widens conv1 for the pose network."""

    def __init__(self, pretrained: Pretrained = None, num_input_images: int = 1) -> None:
        super().__init__()
        self.num_ch_enc = RESNET18_CHANNELS
        resnet = load_resnet18(pretrained)
        if num_input_images > 1:
            old = resnet.conv1
            conv1 = nn.Conv2d(3 * num_input_images, 64, kernel_size=7, stride=2, padding=3,
                              bias=False)
            if pretrained is not None:
                # Duplicate and rescale ImageNet filters so the response to a stacked pair
                # matches the response of the original filters to one image.
                with torch.no_grad():
                    conv1.weight.copy_(
                        torch.cat([old.weight] * num_input_images, 1) / num_input_images)
            resnet.conv1 = conv1
        resnet.fc = nn.Identity()  # classification head unused: keep parameter counts honest
        self.encoder = resnet

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        net = self.encoder
        f1 = net.relu(net.bn1(net.conv1(x)))
        f2 = net.layer1(net.maxpool(f1))
        f3 = net.layer2(f2)
        f4 = net.layer3(f3)
        f5 = net.layer4(f4)
        return [f1, f2, f3, f4, f5]
