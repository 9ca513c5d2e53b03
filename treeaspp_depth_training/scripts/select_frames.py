"""
Choose training samples of a video once and store them, outside the data folder by default.

    python -m treeaspp_depth_training.scripts.select_frames my_video [--method flow|pose] \
        [--sequence-length 3] [--output DIR | --in-place]

Writes ``DIR/SCENE.samples.txt`` (one ``tgt ref ref`` line of frame numbers per sample) per
scene, ``DIR`` = ``--output`` (default ``samples/`` in the current directory, so a read-only
or shared data folder is never written); train with ``--data.samples DIR``. ``--in-place``
writes ``samples.txt`` into each scene folder instead, where the loaders find it without the
option. ``flow`` keeps moderate, translational motion judged from the images alone, ``pose``
uses ``poses.txt`` (see `treeaspp_depth_training.data.selection`). Prints how many frames and
samples each scene keeps and where they went.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.files import atomic_write_text
from treeaspp_depth_training.command import run_command
from treeaspp_depth_training.data.datasets import SamplingConfig, scene_samples
from treeaspp_depth_training.data.scenes import load_video, SAMPLES_SUFFIX

DEFAULT_OUTPUT = Path('samples')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m treeaspp_depth_training.scripts.select_frames', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', help='a scene folder (frames + cam.txt) or a folder of them')
    parser.add_argument('--method', choices=['flow', 'pose', 'stride'], default='flow')
    parser.add_argument('--sequence-length', type=int, default=3)
    parser.add_argument('--skip-frames', type=int, default=1)
    parser.add_argument('--min-translation', type=float, default=0.05)
    parser.add_argument('--max-translation', type=float, default=0.3)
    parser.add_argument('--max-rotation-deg', type=float, default=5.0)
    where = parser.add_mutually_exclusive_group()
    where.add_argument('--output', type=Path, default=None, metavar='DIR',
                       help=f'write DIR/SCENE{SAMPLES_SUFFIX} (default: {DEFAULT_OUTPUT}/ in the '
                            'current directory); train with --data.samples DIR')
    where.add_argument('--in-place', action='store_true',
                       help='write samples.txt into each scene folder (the data folder)')
    args = parser.parse_args(argv)
    config = SamplingConfig(args.method, args.sequence_length, args.skip_frames,
                            args.min_translation, args.max_translation, args.max_rotation_deg)
    output = None if args.in_place else (args.output or DEFAULT_OUTPUT)
    return run_command('select_frames', lambda: _select(args.folder, config, output),
                       (DataError, OSError))


def _select(folder: str, config: SamplingConfig, output: Optional[Path]) -> int:
    """Choose each scene's samples and write them to `output` (None: the scene folders)."""
    for scene in load_video(folder):
        scene.samples = None  # choose afresh, ignoring an existing samples.txt
        samples = scene_samples(scene, config)
        scene_folder = Path(scene.frames[0]).parent
        target = (scene_folder / 'samples.txt' if output is None
                  else output / f'{scene.name}{SAMPLES_SUFFIX}')
        lines = [' '.join(str(i) for i in [tgt] + refs) for tgt, refs in samples]
        atomic_write_text('\n'.join(lines) + '\n', target)
        used = {i for tgt, refs in samples for i in [tgt] + refs}
        print(f'{scene_folder}: {len(samples)} samples using {len(used)} of {len(scene)} '
              f'frames -> {target}')
    if output is not None:
        print(f'train on this selection with --data.samples {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
