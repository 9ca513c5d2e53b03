"""Model card per variant: parameters, size, GFLOPs and CPU latency next to the paper's Table 1."""

import argparse
import json
import platform
from typing import Dict, List

import torch

from .. import __version__
from ..model import DepthNet, PoseNet, VARIANTS
from ..model.cost import count_parameters, cpu_latency_ms, gflops, state_size_mb
from ..progress import track

#: the paper's Table 1 (RTX 3090; model size as the authors report it)
PAPER_TABLE1 = {
    'baseline': {'params_m': 14.15, 'model_size_mb': 59.5, 'train_time': '13h45min',
                 'test_time_s': 52},
    'aspp': {'params_m': 31.66, 'model_size_mb': 95.1, 'train_time': '15h', 'test_time_s': 55},
    'tree_aspp': {'params_m': 31.66, 'model_size_mb': 132.9, 'train_time': '15h',
                  'test_time_s': 55},
}


def variant_card(variant: str, latency_runs: int) -> Dict[str, object]:
    net = DepthNet(variant).eval()
    card = {
        'variant': variant,
        'depth_net_params': count_parameters(net),
        'context_params': count_parameters(net.context) if net.context is not None else 0,
        'pose_net_params': count_parameters(PoseNet()),
        'model_size_mb': round(state_size_mb(net), 2),
        'gflops_320x256': round(gflops(net), 2),
        'paper': PAPER_TABLE1[variant],
    }
    if latency_runs > 0:
        card['cpu_latency_ms_320x256'] = round(cpu_latency_ms(net, runs=latency_runs), 1)
    return card


def backend_summary() -> Dict[str, object]:
    """Which inference backends are installed here and what `--backend auto` picks."""
    from ..backends import BACKENDS, BackendUnavailable, is_installed, resolve_backend
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        auto = resolve_backend('auto', device)
    except BackendUnavailable as error:
        auto = f'none ({error})'
    return {'installed': [b for b in BACKENDS[1:] if is_installed(b)], 'auto': auto,
            'device': device}


def shipped_weights_cards() -> List[Dict[str, object]]:
    """Describe each shipped weights file: what it holds, learnt from and may be used for."""
    from ..checkpoint import CheckpointError, load_checkpoint, training_input_size
    from ..weights import DEFAULT_WEIGHTS, DEMO_WEIGHTS, weights_origin
    cards = []
    for role, path in (('default', DEFAULT_WEIGHTS), ('demo', DEMO_WEIGHTS)):
        card: Dict[str, object] = {'role': role, 'path': str(path)}
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as error:
            card['error'] = str(error)
        else:
            size = training_input_size(ckpt)
            card.update(weights_origin(ckpt, path), variant=ckpt['variant'],
                        size_mb=round(path.stat().st_size / 1e6, 1),
                        input_size='{}x{}'.format(*size) if size else 'unknown',
                        depth_scale=ckpt.get('depth_scale'),
                        pose_net='pose_net' in ckpt)
        cards.append(card)
    return cards


def collect(latency_runs: int = 10) -> Dict[str, object]:
    # building, counting and timing three networks takes a minute on a small CPU: say so
    variants = track(VARIANTS, len(VARIANTS), '[info] building and timing the networks',
                     'variants')
    return {
        'package_version': __version__,
        'torch': torch.__version__,
        'cpu': platform.processor() or platform.machine(),
        'threads': torch.get_num_threads(),
        'latency_backend': 'torch (eager, fp32)',
        'backends': backend_summary(),
        'shipped_weights': shipped_weights_cards(),
        'variants': [variant_card(v, latency_runs) for v in variants],
    }


def format_table(cards: List[Dict[str, object]]) -> str:
    header = (f'{"variant":<10} {"depth params":>13} {"paper":>7} {"pose params":>12} '
              f'{"size MB":>8} {"paper MB":>9} {"GFLOPs":>7} {"CPU ms":>7}')
    lines = [header, '-' * len(header)]
    for c in cards:
        lines.append(
            f'{c["variant"]:<10} {c["depth_net_params"] / 1e6:>12.2f}M '
            f'{c["paper"]["params_m"]:>6.2f}M {c["pose_net_params"] / 1e6:>11.2f}M '
            f'{c["model_size_mb"]:>8.1f} {c["paper"]["model_size_mb"]:>9.1f} '
            f'{c["gflops_320x256"]:>7.2f} {c.get("cpu_latency_ms_320x256", float("nan")):>7.1f}')
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.add_argument('--latency-runs', type=int, default=10,
                        help='timed CPU forward passes per variant (0 skips latency)')


def run(args: argparse.Namespace) -> int:
    info = collect(args.latency_runs)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f'treeaspp_depth_ros {info["package_version"]}, torch {info["torch"]}, '
              f'{info["threads"]} CPU threads; input 320x256, batch 1, latency with backend '
              f'{info["latency_backend"]}')
        print(format_table(info['variants']))
        backends = info['backends']
        print(f'backends installed: {", ".join(backends["installed"])}; --backend auto on '
              f'{backends["device"]}: {backends["auto"]}')
        for card in info['shipped_weights']:
            if 'error' in card:
                print(f'{card["role"]} weights: {card["error"]}')
                continue
            print(f'{card["role"]} weights: {card["path"]} ({card["variant"]}, '
                  f'{card["input_size"]}, {card["size_mb"]} MB, depth_scale '
                  f'{card["depth_scale"]}); trained on: {card["trained_on"]}; licence: '
                  f'{card["licence"]}')
        print('paper figures: Table 1 of the paper (RTX 3090); the ASPP pools here use 512 '
              'channels and dilation rates (1, 2, 3, 4), see docs.')
    return 0
