"""Model card per variant: parameters, size, GFLOPs (and CPU latency if asked) beside Table 1."""

import argparse
import json
import platform
import sys
from typing import Dict, List

import torch

from .. import __version__
from ..cli import CommandError
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


def variant_card(variant: str, net: DepthNet, pose_params: int) -> Dict[str, object]:
    """Parameters, size and GFLOPs of one variant: what does not depend on the machine's load."""
    return {
        'variant': variant,
        'depth_net_params': count_parameters(net),
        'context_params': count_parameters(net.context) if net.context is not None else 0,
        'pose_net_params': pose_params,
        'model_size_mb': round(state_size_mb(net), 2),
        'gflops_320x256': round(gflops(net), 2),
        'paper': PAPER_TABLE1[variant],
    }


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
    from ..checkpoint import (CheckpointError, load_checkpoint, scale_provenance,
                              training_input_size)
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
            origin, synthetic = scale_provenance(ckpt)
            card.update(weights_origin(ckpt, path), variant=ckpt['variant'],
                        size_mb=round(path.stat().st_size / 1e6, 1),
                        input_size='{}x{}'.format(*size) if size else 'unknown',
                        depth_scale=ckpt.get('depth_scale'), depth_scale_origin=origin,
                        scale_is_metric=ckpt.get('depth_scale') is not None and not synthetic,
                        pose_net='pose_net' in ckpt)
        cards.append(card)
    return cards


def collect(latency_runs: int = 0) -> Dict[str, object]:
    """
    Everything `info` prints; CPU latency only when asked (`latency_runs` > 0).

    Latency is timed in interleaved rounds after a warm-up (one forward of each variant per
    round, as the benchmarks do), so a busy machine slows every variant alike; timed one
    variant after another, the load of the moment decided which looked fastest.
    """
    pose_params = count_parameters(PoseNet())
    nets: Dict[str, DepthNet] = {}
    cards = []
    for variant in track(VARIANTS, len(VARIANTS), '[info] building and counting the networks',
                         'variants'):
        nets[variant] = DepthNet(variant).eval()
        cards.append(variant_card(variant, nets[variant], pose_params))
    if latency_runs > 0:
        print(f'[info] timing the networks: {latency_runs} interleaved rounds after a warm-up',
              file=sys.stderr, flush=True)
        latency = cpu_latency_ms(nets, rounds=latency_runs)
        for card in cards:
            card['cpu_latency_ms_320x256'] = round(latency[str(card['variant'])], 1)
    return {
        'package_version': __version__,
        'torch': torch.__version__,
        'cpu': platform.processor() or platform.machine(),
        'threads': torch.get_num_threads(),
        'latency_backend': 'torch (eager, fp32)',
        'latency_rounds': latency_runs,
        'backends': backend_summary(),
        'shipped_weights': shipped_weights_cards(),
        'variants': cards,
    }


def _ms(value: object) -> str:
    return '-' if value is None else f'{float(value):.1f}'


def format_table(cards: List[Dict[str, object]]) -> str:
    header = (f'{"variant":<10} {"depth params":>13} {"paper":>7} {"pose params":>12} '
              f'{"size MB":>8} {"paper MB":>9} {"GFLOPs":>7} {"CPU ms":>7}')
    lines = [header, '-' * len(header)]
    for c in cards:
        lines.append(
            f'{c["variant"]:<10} {c["depth_net_params"] / 1e6:>12.2f}M '
            f'{c["paper"]["params_m"]:>6.2f}M {c["pose_net_params"] / 1e6:>11.2f}M '
            f'{c["model_size_mb"]:>8.1f} {c["paper"]["model_size_mb"]:>9.1f} '
            f'{c["gflops_320x256"]:>7.2f} {_ms(c.get("cpu_latency_ms_320x256")):>7}')
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.add_argument('--latency-runs', type=int, default=0, metavar='N',
                        help='also time the CPU forward pass: N interleaved rounds of every '
                             'variant after a warm-up (default 0: not timed; '
                             'benchmarks/bench_model.py is the measurement)')


def run(args: argparse.Namespace) -> int:
    if args.latency_runs < 0:
        raise CommandError(f'--latency-runs must be 0 or more, got {args.latency_runs}')
    info = collect(args.latency_runs)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        timed = (f'latency with backend {info["latency_backend"]}, {args.latency_runs} '
                 'interleaved rounds' if args.latency_runs else
                 'latency not timed (--latency-runs N)')
        print(f'treeaspp_depth_ros {info["package_version"]}, torch {info["torch"]}, '
              f'{info["threads"]} CPU threads; input 320x256, batch 1, {timed}')
        print(format_table(info['variants']))
        backends = info['backends']
        print(f'backends installed: {", ".join(backends["installed"])}; --backend auto on '
              f'{backends["device"]}: {backends["auto"]}')
        for card in info['shipped_weights']:
            if 'error' in card:
                print(f'{card["role"]} weights: {card["error"]}')
                continue
            scale = card['depth_scale']
            scale_text = 'none (up to scale)' if scale is None else (
                f'{scale:.4g}, {card["depth_scale_origin"]}'
                + ('' if card['scale_is_metric'] else '; not metric for a real camera'))
            print(f'{card["role"]} weights: {card["path"]} ({card["variant"]}, '
                  f'{card["input_size"]}, {card["size_mb"]} MB, depth_scale {scale_text}); '
                  f'trained on: {card["trained_on"]}; licence: {card["licence"]}')
        print('paper figures: Table 1 of the paper (RTX 3090); the ASPP pools here use 512 '
              'channels and dilation rates (1, 2, 3, 4), see docs.')
    return 0
