"""Microsoft 7-Scenes: ``frame-N.color.png|jpg``, ``.depth.png`` (mm, 65535 = hole), poses."""

from pathlib import Path
import re
from typing import List, Optional

from .errors import DataError
from .files import natural_key, require_dir
from .images import image_size
from .intrinsics import find_intrinsics_file, parse_intrinsics, scaled_intrinsics
from .poses import read_pose_matrix
from .records import Dataset, DEFAULT_START_NS, Frame, frame_stamps

#: published intrinsics (fx, fy, cx, cy) at 640x480
SEVEN_SCENES_INTRINSICS = ((585.0, 585.0, 320.0, 240.0), (640, 480))
SEVEN_SCENES_INVALID = 65535
#: calibrations of your own next to the frames replace the published intrinsics
INTRINSICS_FILES = ('camera-intrinsics.txt', 'cam.txt')
#: colour frame suffixes: the dataset's PNG, and JPEG copies of it
COLOR_SUFFIXES = ('.color.png', '.color.jpg')


def seven_scenes_colors(src: Path) -> List[Path]:
    """List the colour frames of a 7-Scenes folder in frame order (one suffix per folder)."""
    for suffix in COLOR_SUFFIXES:
        colors = sorted(src.glob(f'frame-*{suffix}'), key=natural_key)
        if colors:
            return colors
    return []


def is_seven_scenes(src: Path) -> bool:
    """Whether a folder holds 7-Scenes colour frames (PNG or JPEG)."""
    return any(any(src.glob(f'frame-*{suffix}')) for suffix in COLOR_SUFFIXES)


def load_seven_scenes(src: Path, intrinsics: Optional[str] = None, fps: float = 30.0,
                      start_ns: int = DEFAULT_START_NS) -> Dataset:
    """Read one sequence folder; stamps follow the frame numbers, so gaps in a subset stay."""
    src = require_dir(src, '7-Scenes sequence')
    colors = seven_scenes_colors(src)
    if not colors:
        raise DataError(f'{src} has no frame-*.color.png or .color.jpg (7-Scenes layout)')
    depths = sorted(src.glob('frame-*.depth.png'))
    if depths and len(depths) != len(colors):
        raise DataError(
            f'mismatched 7-Scenes counts in {src}: {len(colors)} colour and {len(depths)} depth '
            'frames')
    width, height = image_size(colors[0])
    if intrinsics is None:
        found = find_intrinsics_file(src, INTRINSICS_FILES)
        intrinsics = None if found is None else str(found)
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        SEVEN_SCENES_INTRINSICS, width, height)
    stems = [color.name[:-len('.color.png')] for color in colors]  # both suffixes: 10 chars
    numbers = []
    for color, stem in zip(colors, stems):
        match = re.fullmatch(r'frame-(\d+)', stem)
        if match is None:
            raise DataError(f'unexpected 7-Scenes file name {color.name}')
        numbers.append(int(match.group(1)))
    frames = []
    for color, stem, stamp in zip(colors, stems, frame_stamps(numbers, fps, start_ns)):
        frame = Frame(stamp_ns=stamp, rgb_path=color)
        if depths:
            depth = src / f'{stem}.depth.png'
            if not depth.is_file():
                raise DataError(f'7-Scenes frame {color.name} has no {depth.name}')
            frame.depth_path = depth
            frame.depth_stamp_ns = stamp
        pose_file = src / f'{stem}.pose.txt'
        if pose_file.is_file():
            frame.pose = read_pose_matrix(pose_file)
        frames.append(frame)
    return Dataset(name='7scenes', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=0.001, depth_invalid=(0, SEVEN_SCENES_INVALID))
