"""
Outcome distribution of the from-scratch training recipe over seeds x torch thread counts.

Other machines run other kernels and sum in another order, so the same seed takes another
trajectory there; a second thread count perturbs it the same way on this machine. Each run is
`treeaspp_depth_training.learning_check.run_learning_check` in its own process (so the thread
count is clean):
median-scaled AbsRel on held-out rooms before and after training, and on the demo's frames.
Usage::

    python -m benchmarks.learning_matrix [--seeds 0-9] [--threads 1 2] [--jobs 2]
        [--set model.pose_head_init=reference --label reference-init]
        [--keep runs/matrix] [--output benchmarks/results/learning_matrix.json] [--resume]

``--jobs 2`` runs two single-thread runs at once (runs with more threads run alone). The JSON is
rewritten after every finished run (``complete`` says whether all planned runs are in it), so an
interrupted matrix keeps what it measured; ``--resume`` runs only the seed x threads pairs that the
output file does not hold yet for the same config and overrides.
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import threading
from typing import Any, Dict, List, Sequence, Tuple

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json

#: the learning test's bar: trained error at most this fraction of the untrained one
BAR = 0.7


def _seeds(text: str) -> List[int]:
    if '-' in text:
        low, high = (int(v) for v in text.split('-'))
        return list(range(low, high + 1))
    return [int(v) for v in text.split(',')]


def _overrides(pairs: Sequence[str]) -> Dict[str, Any]:
    import yaml
    result = {}
    for pair in pairs:
        key, _, value = pair.partition('=')
        result[key] = yaml.safe_load(value)
    return result


def _one(args: argparse.Namespace) -> int:
    import torch

    from treeaspp_depth_training.learning_check import run_learning_check
    seed, threads = args.one
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix='learning_matrix_') as scratch:
        run_dir = Path(args.keep) / f'seed{seed}_threads{threads}' if args.keep else Path(scratch)
        result = run_learning_check(run_dir, args.config, seed, threads,
                                    _overrides(args.set), demo_frames=True)
    Path(args.result).write_text(json.dumps(result.as_dict()))
    return 0


def _launch(args: argparse.Namespace, seed: int, threads: int) -> Dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix='.json') as out:
        command = [sys.executable, '-m', 'benchmarks.learning_matrix', '--one', str(seed),
                   str(threads), '--result', out.name, '--config', args.config]
        if args.keep:
            command += ['--keep', str(args.keep)]
        for pair in args.set:
            command += ['--set', pair]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            return {'seed': seed, 'threads': threads, 'error': run.stderr[-2000:]}
        row = json.loads(Path(out.name).read_text())
    print(f'seed {seed} threads {threads}: AbsRel {row["untrained"]:.3f} -> '
          f'{row["trained"]:.3f} (x{row["ratio"]:.2f}), demo frames {row["demo_abs_rel"]:.3f}, '
          f'{row["wall_s"]:.0f} s', flush=True)
    return row


def _summary(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    done = [row for row in rows if 'error' not in row]
    if not done:
        return {'runs': len(rows), 'failed_to_run': len(rows)}
    ratios = [row['ratio'] for row in done]
    demo = [row['demo_abs_rel'] for row in done]
    return {
        'runs': len(rows), 'failed_to_run': len(rows) - len(done),
        'learned': sum(ratio <= BAR and row['trained'] < row['constant']
                       for ratio, row in zip(ratios, done)),
        'bar': f'trained <= {BAR} x untrained and below constant depth',
        'ratio_worst': max(ratios), 'ratio_median': statistics.median(ratios),
        'ratio_best': min(ratios),
        'trained_abs_rel_worst': max(row['trained'] for row in done),
        'demo_abs_rel_worst': max(demo), 'demo_abs_rel_median': statistics.median(demo),
        'demo_abs_rel_best': min(demo),
        'wall_s_median': statistics.median(row['wall_s'] for row in done),
    }


def _finished_rows(path: Path, header: Dict[str, Any]) -> Dict[Tuple[int, int], Dict[str, Any]]:
    """Return the finished runs of an earlier matrix of the same config and overrides."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    if (earlier.get('config'), earlier.get('overrides')) != (header['config'],
                                                             header['overrides']):
        raise SystemExit(f'{path} holds a matrix of another config or overrides; '
                         f'choose another --output')
    return {(row['seed'], row['threads']): row for row in earlier.get('runs', [])
            if 'error' not in row}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='demo', help='training config (default: demo)')
    parser.add_argument('--seeds', default='0-9', help='e.g. 0-9 or 0,3,5')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--jobs', type=int, default=1,
                        help='single-thread runs at once (default 1)')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='config override for every run, e.g. model.pose_head_init=reference')
    parser.add_argument('--label', default='', help='name of this matrix in the JSON')
    parser.add_argument('--keep', type=Path, metavar='DIR',
                        help='keep each run in DIR/seedS_threadsT (default: deleted)')
    add_output_option(parser, 'learning_matrix.json')
    parser.add_argument('--resume', action='store_true',
                        help='keep the finished runs already in --output, run the others')
    parser.add_argument('--one', type=int, nargs=2, metavar=('SEED', 'THREADS'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resume and args.output is None:
        parser.error("--resume needs --output FILE, the interrupted run's result")
    args.output = resolve_output(args.output, 'learning_matrix.json')
    if args.one:
        return _one(args)
    planned = [(seed, threads) for threads in args.threads for seed in _seeds(args.seeds)]
    header = {'benchmark': 'learning_matrix', 'label': args.label, 'config': args.config,
              'overrides': _overrides(args.set), 'machine': machine_info()}
    done = _finished_rows(args.output, header) if args.resume else {}
    rows: List[Dict[str, Any]] = [done[key] for key in planned if key in done]
    if rows:
        print(f'{len(rows)} of {len(planned)} runs already in {args.output}', flush=True)
    lock = threading.Lock()

    def write(echo: bool) -> None:
        write_json(dict(header, complete=len(rows) == len(planned), planned=len(planned),
                        summary=_summary(rows), runs=rows), args.output, echo=echo)

    def record(row: Dict[str, Any]) -> None:
        with lock:
            rows.append(row)
            write(echo=False)

    for threads in args.threads:
        todo = [seed for seed, t in planned if t == threads and (seed, t) not in done]
        with ThreadPoolExecutor(max(1, args.jobs // threads)) as pool:
            list(pool.map(lambda seed: record(_launch(args, seed, threads)), todo))
    write(echo=True)
    return 0 if all('error' not in row for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
