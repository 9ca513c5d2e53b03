"""
Spatial semantic information pools between encoder and decoder: ASPP and Tree-shaped ASPP.

Both pools have the same modules -- four dilated 3x3 conv + BN + ELU blocks, a global-average-
pooling branch and a 1x1 fusion back to the encoder's width -- and therefore exactly the same
parameter count; they differ only in wiring (the paper's Table 1 compares exactly that):

* ``ASPP`` (DeepLabv3, parallel): every block sees the encoder features ``x``;
  stack ``[x, b1(x), b2(x), b3(x), b4(x), gap(x)]``.
* ``TreeASPP``: each expansion step copies its input into two branches: one keeps the current
  features (it goes straight to the stack), the other aggregates wider context through the next
  dilated block, whose output feeds the following step:
  ``h0 = x, h_k = b_k(h_{k-1})``, stack ``[h0, h1, h2, h3, h4, gap(h4)]``. Later steps re-process
  what earlier steps learned, so features of different receptive fields become related.

Dilation rates: at 320x256 input the 1/32 feature map is only 8x10. DeepLab's 6/12/18 were chosen
for ~33x33 maps (rate / map size 0.2-0.55); on 8x10 a rate >= 8 leaves only the centre tap inside
the map, i.e. a 1x1 conv. The default (1, 2, 3, 4) keeps DeepLab's proportions on 8 rows, and in
the tree the cascade reaches 1 + 2*(1+2+3+4) = 21 cells, i.e. the whole map, before global pooling.
"""

from typing import Sequence, Tuple

import torch
from torch import nn

from .blocks import AtrousBlock, GlobalPoolBranch

DEFAULT_DILATION_RATES = (1, 2, 3, 4)


def check_dilation_rates(dilation_rates: Sequence[int]) -> Tuple[int, ...]:
    """Check a context pool's four dilation rates (ints >= 1); ValueError says why not."""
    try:
        rates = tuple(int(r) for r in dilation_rates)
        whole = all(r == v and not isinstance(v, bool) for r, v in zip(rates, dilation_rates))
    except (TypeError, ValueError):
        rates, whole = (), False
    if not whole or len(rates) != 4 or min(rates) < 1:
        raise ValueError(f'need four dilation rates >= 1, got {dilation_rates!r}')
    return rates


class _ContextPool(nn.Module):

    def __init__(self, channels: int, dilation_rates: Sequence[int]) -> None:
        super().__init__()
        rates = check_dilation_rates(dilation_rates)
        self.dilation_rates = rates
        self.blocks = nn.ModuleList(AtrousBlock(channels, channels, r) for r in rates)
        self.global_pool = GlobalPoolBranch(channels, channels)
        stacked = channels * (len(rates) + 2)
        self.fuse = nn.Sequential(nn.Conv2d(stacked, channels, 1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ELU(inplace=True))


class ASPP(_ContextPool):
    """Parallel atrous spatial pyramid pooling (DeepLabv3 style)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stack = [x] + [block(x) for block in self.blocks] + [self.global_pool(x)]
        return self.fuse(torch.cat(stack, 1))


class TreeASPP(_ContextPool):
    """Tree-shaped ASPP: cascaded expansion steps whose outputs are all stacked."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stack = [x]
        h = x
        for block in self.blocks:
            h = block(h)
            stack.append(h)
        stack.append(self.global_pool(h))
        return self.fuse(torch.cat(stack, 1))
