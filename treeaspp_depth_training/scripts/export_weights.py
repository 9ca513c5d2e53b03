"""
Strip a training checkpoint down to the depth network for deployment (optionally fp16).

    python -m treeaspp_depth_training.scripts.export_weights runs/demo/best.pth weights/demo.pth \
        --fp16

Keeps the format, variant, model config, training config, metrics and training time; drops the
pose network and optimiser state. ``--fp16`` stores the weights in half precision (half the
size; they are loaded back into the fp32 network, so inference is unchanged up to fp16
rounding of the weights).
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional

from treeaspp_depth_ros.checkpoint import CheckpointError, load_depth_net, save_checkpoint
from treeaspp_depth_training.command import run_command

KEEP = ('config', 'metrics', 'train_time_s', 'epoch', 'step', 'depth_scale')


def export(source: Path, target: Path, fp16: bool = False) -> Path:
    net, ckpt = load_depth_net(source)
    if fp16:
        net = net.half()
    extra = {key: ckpt[key] for key in KEEP if key in ckpt}
    return save_checkpoint(target, net, **extra)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.scripts.export_weights', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', type=Path)
    parser.add_argument('target', type=Path)
    parser.add_argument('--fp16', action='store_true')
    args = parser.parse_args(argv)
    return run_command('export_weights', lambda: _export(args), (CheckpointError,))


def _export(args: argparse.Namespace) -> int:
    out = export(args.source, args.target, args.fp16)
    print(f'wrote {out} ({out.stat().st_size / 1e6:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
