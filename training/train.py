r"""
Train depth + pose networks without depth labels (SC-SfMLearner with a Tree-shaped ASPP).

One command for every scale::

    python -m training.train --config tree_aspp --data.root /data/nyu           # 1 process
    torchrun --nproc_per_node 8 -m training.train --config tree_aspp \
        --data.root /data/nyu --train.amp bf16 --train.channels_last true       # 8 GPUs
    python -m training.train --config demo                                      # CPU, minutes

Checkpoints ``best.pth`` (lowest validation AbsRel) and ``last.pth`` go to ``train.output_dir``
(default ``runs/<name>``); ``--train.resume runs/<name>/last.pth`` continues exactly.
"""

import argparse
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Union

from treeaspp_depth_ros.data import DataError

from .config import add_override_arguments, ConfigError, dump, load_config, overrides_from_args
from .trainer import Trainer, TrainingError


def train_from_config(config: Union[str, Path, Dict[str, Any]],
                      overrides: Optional[Dict[str, Any]] = None) -> Path:
    """Train with a config file, bundled config name or dict; return the best checkpoint."""
    trainer = Trainer(load_config(config, overrides))
    try:
        return trainer.fit()
    finally:
        trainer.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m training.train', description=__doc__, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True,
                        help='YAML file or bundled config name: baseline, aspp, tree_aspp, '
                             'demo, synthetic_tiny')
    parser.add_argument('--resume', default=None, metavar='CKPT',
                        help='shorthand for --train.resume')
    parser.add_argument('--print-config', action='store_true',
                        help='print the merged config and exit')
    add_override_arguments(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = overrides_from_args(args)
        if args.resume:
            overrides['train.resume'] = args.resume
        config = load_config(args.config, overrides)
        if args.print_config:
            print(dump(config), end='')
            return 0
        best = train_from_config(config)
    except (ConfigError, DataError, TrainingError) as error:
        print(f'training.train: error: {error}', file=sys.stderr)
        return 1
    print(f'best checkpoint: {best}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
