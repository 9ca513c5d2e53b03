"""
Choose training samples of a video once and store them in its ``samples.txt``.

    python -m treeaspp_depth_training.scripts.select_frames my_video [--method flow|pose] \
        [--sequence-length 3]

Writes ``samples.txt`` (one ``tgt ref ref`` line of frame numbers per sample) into each scene
folder; the data loaders use it instead of choosing samples on every start. ``flow`` keeps
moderate, translational motion judged from the images alone, ``pose`` uses ``poses.txt`` (see
`treeaspp_depth_training.data.selection`). Prints how many frames and samples each scene keeps.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional

from treeaspp_depth_ros.data import DataError
from treeaspp_depth_training.command import run_command
from treeaspp_depth_training.data.datasets import SamplingConfig, scene_samples
from treeaspp_depth_training.data.scenes import load_video


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
    args = parser.parse_args(argv)
    config = SamplingConfig(args.method, args.sequence_length, args.skip_frames,
                            args.min_translation, args.max_translation, args.max_rotation_deg)
    return run_command('select_frames', lambda: _select(args.folder, config), (DataError,))


def _select(folder: str, config: SamplingConfig) -> int:
    for scene in load_video(folder):
        scene.samples = None  # choose afresh, ignoring an existing samples.txt
        samples = scene_samples(scene, config)
        scene_folder = Path(scene.frames[0]).parent
        lines = [' '.join(str(i) for i in [tgt] + refs) for tgt, refs in samples]
        (scene_folder / 'samples.txt').write_text('\n'.join(lines) + '\n')
        used = {i for tgt, refs in samples for i in [tgt] + refs}
        print(f'{scene_folder}: {len(samples)} samples using {len(used)} of {len(scene)} '
              'frames')
    return 0


if __name__ == '__main__':
    sys.exit(main())
