r"""
Evaluate checkpoints on a depth test set and lay the results out as the paper's Table 1.

    python -m treeaspp_depth_training.evaluate --data nyu/testing \
        --weights runs/baseline/best.pth runs/aspp/best.pth runs/tree_aspp/best.pth \
        --output results/table1

writes ``results.json``, ``results.md`` (Table 1: AbsRel, Log10, RMSE, delta 1-3, SqRel,
RMSE-log, Params, Model size, Training time, Test time) and ``figure3.png`` (RGB | each
checkpoint | ground truth, one colour scale per row). Metrics use per-image median scaling (the
paper's protocol); the same metrics under one global scale are reported alongside.
Columns are named by the checkpoints' config names (``--names`` to choose); checkpoints that
share one get their file beside it (``demo (a/best.pth)``), so none is dropped from the figure.
"""

import argparse
import json
from pathlib import Path
import platform
import sys
from typing import Any, Dict, List, Optional

import cv2
import numpy as np
import torch

from treeaspp_depth_ros.checkpoint import CheckpointError
from treeaspp_depth_ros.cli_options import add_input_size_option, add_weights_option
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.files import atomic_write_text
from treeaspp_depth_ros.inference import DepthEstimator

from .command import run_command
from .data.datasets import DepthTestSet
from .data.testsets import detect_layout, load_test_set, test_set_info
from .validation import evaluate_depth
from .visualize import comparison_figure

NYU_LAYOUTS = ('test', 'sc_depth')
TABLE_ROWS = (('abs_rel', 'AbsRel ↓', '{:.3f}'), ('log10', 'Log10 ↓', '{:.3f}'),
              ('rmse', 'RMSE ↓', '{:.3f}'), ('a1', 'δ1 < 1.25 ↑', '{:.3f}'),
              ('a2', 'δ2 < 1.25² ↑', '{:.3f}'), ('a3', 'δ3 < 1.25³ ↑', '{:.3f}'),
              ('sq_rel', 'SqRel ↓', '{:.3f}'), ('rmse_log', 'RMSE log ↓', '{:.3f}'))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.evaluate', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True,
                        help='test folder (color/ + depth/*.png or depth.npy; SC-Depth val '
                             'scenes; 7-Scenes; TUM) or "synthetic" for held-out rooms')
    add_weights_option(parser, 'checkpoints to compare (one Table 1 column each)', nargs='+',
                       metavar='CKPT')
    parser.add_argument('--output', required=True, help='folder for results.json/.md, figure')
    parser.add_argument('--names', nargs='+', help='column names (default: config name)')
    parser.add_argument('--layout', default='auto',
                        choices=['auto', 'test', 'sc_depth', '7scenes', 'tum', 'video'])
    parser.add_argument('--crop', default='auto', choices=['auto', 'eigen', 'none'],
                        help='auto: Eigen crop for NYU layouts, none otherwise')
    parser.add_argument('--min-depth', type=float, default=0.1)
    parser.add_argument('--max-depth', type=float, default=10.0)
    add_input_size_option(parser)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16', 'bf16'])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--stride', type=int, default=1, help='every n-th frame (video sets)')
    parser.add_argument('--limit', type=int, default=0, help='at most n images (0 = all)')
    parser.add_argument('--no-global', action='store_true',
                        help='skip the global-scale protocol (saves a second inference pass)')
    parser.add_argument('--figure-rows', type=int, default=4,
                        help='images in figure3.png (0 = no figure)')
    return parser


def _model_facts(estimator: DepthEstimator, path: Path) -> Dict[str, Any]:
    net = estimator.net
    state_bytes = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    return {'params': int(sum(p.numel() for p in net.parameters())),
            'model_size_mb': state_bytes / 1e6,
            'checkpoint_file_mb': path.stat().st_size / 1e6}


def evaluate_checkpoint(path: Path, test_set: DepthTestSet, args: argparse.Namespace,
                        crop: Optional[str]) -> Dict[str, Any]:
    estimator = DepthEstimator(path, device=args.device, input_size=args.input_size,
                               precision=args.precision)
    ckpt = estimator.checkpoint
    print(f'[evaluate] {path}: {estimator.describe()}', flush=True)
    result = evaluate_depth(estimator, test_set, args.min_depth, args.max_depth, crop,
                            global_scale=not args.no_global, batch_size=args.batch_size,
                            num_workers=args.workers, progress=f'[evaluate] {path.name}')
    entry: Dict[str, Any] = {
        'name': (ckpt.get('config') or {}).get('name') or path.stem,
        'checkpoint': str(path), 'variant': estimator.variant,
        **result['median'],
        **_model_facts(estimator, path),
        'test_time_s': result['test_time_s'], 'num_images': result['num_images'],
        'train_time_s': ckpt.get('train_time_s'),
        'input_size': list(estimator.input_size),
        'protocol': dict(result['protocol'], scaling='median'),
        'scale_ratio': result['scale_ratio'],
    }
    if 'global' in result:
        entry['global_scale'] = dict(result['global'],
                                     protocol=dict(result['protocol'], scaling='global'))
    entry['_estimator'] = estimator
    return entry


def column_names(names: List[str], paths: List[Path]) -> List[str]:
    """
    Make the columns' names unique: a name two checkpoints share gets its file beside it.

    Two runs of one config (``runs/a/best.pth``, ``runs/b/best.pth``) are both called by the
    config's name; a table with two equal headers, or a figure keyed by name, would lose one.
    """
    unique = list(names)
    for name in set(names):
        group = [i for i, n in enumerate(names) if n == name]
        if len(group) < 2:
            continue
        parts = [paths[i].resolve().parts for i in group]
        depth = 1  # the shortest path tail that tells the files apart
        while depth < max(len(p) for p in parts) and \
                len({p[-depth:] for p in parts}) < len(parts):
            depth += 1
        for i, tail in zip(group, parts):
            unique[i] = f'{name} ({"/".join(tail[-depth:])})'
    return unique


def _hours(seconds: Optional[float]) -> str:
    if not seconds:
        return 'n/a'
    minutes = int(round(seconds / 60))
    return f'{minutes // 60}h{minutes % 60:02d}min' if minutes >= 60 else f'{seconds:.0f}s'


def markdown_table(entries: List[Dict[str, Any]], info: Dict[str, Any]) -> str:
    names = [e['name'] for e in entries]
    lines = [f'# Depth evaluation: {info["test_set"]}', '',
             f'- images: {info["num_images"]} ({info.get("split") or "split not recorded"})',
             f'- protocol: per-image median scaling, crop {info["crop"] or "none"}, depth range '
             f'{info["min_depth"]}-{info["max_depth"]} m', '',
             '| | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    for key, label, fmt in TABLE_ROWS:
        lines.append(f'| {label} | ' + ' | '.join(fmt.format(e[key]) for e in entries) + ' |')
    lines.append('| Params | ' + ' | '.join(f'{e["params"] / 1e6:.2f}M' for e in entries) + ' |')
    lines.append('| Model size | ' + ' | '.join(f'{e["model_size_mb"]:.1f}MB' for e in entries)
                 + ' |')
    lines.append('| Training time | ' + ' | '.join(_hours(e['train_time_s']) for e in entries)
                 + ' |')
    lines.append('| Test time | ' + ' | '.join(f'{e["test_time_s"]:.1f}s' for e in entries)
                 + ' |')
    if all('global_scale' in e for e in entries):
        lines += ['', '## One global scale per checkpoint (what a robot gets)', '',
                  '| | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
        for key, label, fmt in TABLE_ROWS:
            lines.append(f'| {label} | '
                         + ' | '.join(fmt.format(e['global_scale'][key]) for e in entries) + ' |')
        scales = [f'{e["global_scale"]["scale"]:.3f}' for e in entries]
        lines.append('| scale | ' + ' | '.join(scales) + ' |')
    lines += ['', 'Model size: depth network weights (fp32 state dict). Test time: network '
              'inference incl. resizing, summed over the test set.']
    return '\n'.join(lines) + '\n'


def draw_figure(entries: List[Dict[str, Any]], test_set: DepthTestSet, rows: int, path: Path
                ) -> None:
    picks = np.linspace(0, len(test_set) - 1, min(rows, len(test_set))).round().astype(int)
    samples = [test_set[int(i)] for i in picks]
    rgbs = [s[0] for s in samples]
    gts = [s[1] for s in samples]
    predictions = {e['name']: e['_estimator'].predict_batch(rgbs) for e in entries}
    figure = comparison_figure(rgbs, predictions, gts)
    cv2.imwrite(str(path), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))


def run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.weights]
    names = args.names or []
    if names and len(names) != len(paths):
        raise DataError(f'--names needs one name per checkpoint ({len(paths)})')
    resolved = [p.resolve() for p in paths]
    twice = sorted({str(p) for p in paths if resolved.count(p.resolve()) > 1})
    if twice:
        raise DataError(f'--weights names {", ".join(twice)} more than once')
    if len(set(names)) < len(names):
        raise DataError(f'--names must differ (each names a column): {" ".join(names)}')
    layout = detect_layout(args.data) if args.layout == 'auto' and args.data != 'synthetic' \
        else args.layout
    crop = {'eigen': 'eigen', 'none': None}.get(args.crop,
                                                'eigen' if layout in NYU_LAYOUTS else None)
    test_set = load_test_set(args.data, layout, args.stride, args.limit or None)
    test_set.check()
    entries = []
    for index, path in enumerate(paths):
        entry = evaluate_checkpoint(path, test_set, args, crop)
        if names:
            entry['name'] = names[index]
        entries.append(entry)
    for entry, name in zip(entries, column_names([e['name'] for e in entries], paths)):
        entry['name'] = name
        print(f'{entry["name"]}: AbsRel {entry["abs_rel"]:.4f}  RMSE {entry["rmse"]:.4f}  '
              f'd1 {entry["a1"]:.4f}  ({entry["num_images"]} images, '
              f'{entry["test_time_s"]:.1f}s)')
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    info = {'test_set': str(args.data), 'layout': layout, 'num_images': len(test_set),
            'split': test_set_info(args.data).get('split') if args.data != 'synthetic' else
            'synthetic held-out rooms',
            'crop': crop, 'min_depth': args.min_depth, 'max_depth': args.max_depth,
            'device': str(entries[0]['_estimator'].device), 'precision': args.precision,
            'machine': {'python': platform.python_version(), 'torch': torch.__version__,
                        'cpu': platform.processor() or platform.machine(),
                        'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available()
                        else None}}
    if args.figure_rows > 0:
        draw_figure(entries, test_set, args.figure_rows, out / 'figure3.png')
    results = [{k: v for k, v in e.items() if not k.startswith('_')} for e in entries]
    atomic_write_text(json.dumps({'test_set': info, 'results': results}, indent=2),
                      out / 'results.json')
    atomic_write_text(markdown_table(results, info), out / 'results.md')
    print(f'wrote {out / "results.json"}, {out / "results.md"}'
          + (f', {out / "figure3.png"}' if args.figure_rows > 0 else ''))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command('treeaspp_depth_training.evaluate', lambda: run(args),
                       (DataError, CheckpointError, ValueError))


if __name__ == '__main__':
    sys.exit(main())
