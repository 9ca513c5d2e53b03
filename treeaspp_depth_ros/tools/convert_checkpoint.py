"""Import SC-SfMLearner and sc_depth_pl weights into this project's checkpoint format."""

import argparse
from pathlib import Path
from typing import Dict

import torch

from ..checkpoint import (CheckpointError, depth_net_from_checkpoint, FORMAT, load_pose_net,
                          save_checkpoint)
from ..cli import CommandError
from ..model import PoseNet
from ..safe_load import torch_load_reason

#: source -> (key prefix of the depth net, key prefix of the pose net, decoder upsampling)
SOURCES = {
    'sc-sfmlearner': ('', None, 'nearest'),
    'sc-depth-pl': ('depth_net.', 'pose_net.', 'bilinear'),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--from', dest='source', required=True, choices=sorted(SOURCES),
                        help='checkpoint family: SC-SfMLearner `dispnet_*.pth.tar` (nearest '
                             'upsampling) or an sc_depth_pl Lightning `.ckpt` (bilinear)')
    parser.add_argument('input', type=Path, help='checkpoint to import')
    parser.add_argument('output', type=Path, help='where to write the converted checkpoint')
    parser.add_argument('--upsample', choices=['nearest', 'bilinear'],
                        help='override the decoder upsampling mode of the source family')
    parser.add_argument('--pose', type=Path,
                        help='SC-SfMLearner `exp_pose_*.pth.tar` to include the pose network')


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CommandError(f'input checkpoint not found: {path}')
    try:
        # Lightning stores hyper-parameters as argparse.Namespace; allow that one class only.
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: B902 - torch raises many types for bad files
        reason = torch_load_reason(error)
        if 'GLOBAL' in reason:
            raise CommandError(f'refused to read {path}: it holds pickled Python objects '
                               f'({reason}), and loading those can run arbitrary code; only '
                               'tensors and plain values are read') from None
        raise CommandError(f'cannot read {path} as a PyTorch checkpoint (a text file, a '
                           f'truncated download, another format?): {reason}') from None
    if isinstance(data, dict) and isinstance(data.get('state_dict'), dict):
        return data['state_dict']
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return data
    raise CommandError(f'{path} holds no state_dict (keys: {list(data)[:5]})')


def _strip(state: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix) and '.fc.' not in k}


def convert(source: str, input_path: Path, output: Path, upsample: str = None,
            pose_path: Path = None) -> Path:
    """Convert and verify (by loading into the network) before writing anything."""
    depth_prefix, pose_prefix, default_upsample = SOURCES[source]
    state = _read(input_path)
    depth_state = _strip(state, depth_prefix)
    if not depth_state:
        raise CommandError(f'{input_path}: no keys with prefix {depth_prefix!r}; is this a '
                           f'{source} checkpoint?')
    ckpt = {'format': FORMAT, 'variant': 'baseline',
            'model_config': {'variant': 'baseline',
                             'upsample_mode': upsample or default_upsample},
            'depth_net': depth_state}
    pose_state = None
    if pose_prefix is not None:
        pose_state = _strip(state, pose_prefix) or None
    if pose_path is not None:
        pose_state = _strip(_read(pose_path), '')
    if pose_state:
        ckpt['pose_net'] = pose_state
    try:
        net = depth_net_from_checkpoint(ckpt)
        pose_net = load_pose_net(ckpt) if pose_state else None
    except CheckpointError as error:
        raise CommandError(f'{input_path}: {error}') from None
    return save_checkpoint(output, net, pose_net if isinstance(pose_net, PoseNet) else None,
                           imported_from={'family': source, 'path': str(input_path)})


def run(args: argparse.Namespace) -> int:
    out = convert(args.source, args.input, args.output, args.upsample, args.pose)
    print(f'wrote {out} (variant baseline, from {args.source})')
    return 0
