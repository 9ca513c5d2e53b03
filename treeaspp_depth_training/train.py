r"""
Train depth + pose networks without depth labels (SC-SfMLearner with a Tree-shaped ASPP).

One command for every scale::

    python -m treeaspp_depth_training.train --config tree_aspp --data.root /data/nyu  # 1 process
    torchrun --nproc_per_node 8 -m treeaspp_depth_training.train --config tree_aspp \
        --data.root /data/nyu --train.amp bf16 --train.channels_last true           # 8 GPUs
    python -m treeaspp_depth_training.train --config demo                           # CPU

Checkpoints ``best.pth`` (lowest validation AbsRel) and ``last.pth`` go to ``train.output_dir``
(default ``runs/<name>``); ``--train.resume runs/<name>/last.pth`` continues exactly.
"""

import argparse
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Union

from treeaspp_depth_ros.checkpoint import CheckpointError
from treeaspp_depth_ros.data import DataError

from .config import (add_override_arguments, bundled_configs, ConfigError, dump, load_config,
                     overrides_from_args)
from .trainer import Trainer, TrainingError


def train_from_config(config: Union[str, Path, Dict[str, Any]],
                      overrides: Optional[Dict[str, Any]] = None) -> Path:
    """Train with a config file, bundled config name or dict; return the best checkpoint."""
    trainer = Trainer(load_config(config, overrides))
    try:
        return trainer.fit()
    finally:
        trainer.close()


def build_parser(shown: Optional[Dict[str, Any]] = None) -> argparse.ArgumentParser:
    """Build the CLI; `--help` lists every field with its value in ``shown`` (a config)."""
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.train', description=__doc__, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True,
                        help='YAML file or bundled config name: '
                             f'{", ".join(bundled_configs())}')
    parser.add_argument('--resume', default=None, metavar='CKPT',
                        help='shorthand for --train.resume')
    parser.add_argument('--print-config', action='store_true',
                        help='print the merged config and exit')
    add_override_arguments(parser, shown)
    return parser


def _config_named_in(argv: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    """Load the config `--config` names, so `--help` can show its values; None if unreadable."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument('--config')
    name = early.parse_known_args(argv)[0].config
    try:
        return load_config(name) if name else None
    except (ConfigError, OSError):
        return None


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser(_config_named_in(argv)).parse_args(argv)
    try:
        overrides = overrides_from_args(args)
        if args.resume:
            overrides['train.resume'] = args.resume
        config = load_config(args.config, overrides)
        if args.print_config:
            print(dump(config), end='')
            return 0
        best = train_from_config(config)
    except (CheckpointError, ConfigError, DataError, TrainingError) as error:
        print(f'treeaspp_depth_training.train: error: {error}', file=sys.stderr)
        return 1
    if best.name == 'best.pth':
        print(f'best checkpoint (lowest validation AbsRel): {best}')
    else:
        print(f'final checkpoint (no validation set, so no best one): {best}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
