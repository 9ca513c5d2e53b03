"""
Readers for the RGB-D dataset layouts that `make-bag` and `calibrate-scale` accept.

Every reader returns a :class:`Dataset`: a list of frames with stamps, the camera matrix for the
image size, and lazy loaders (RGB as HxWx3 uint8, depth as HxW float32 metres with NaN for "no
measurement"), so that sequences of thousands of frames never sit in memory at once.
"""

from dataclasses import dataclass, field
from pathlib import Path
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from treeaspp_depth_ros.cli import CommandError

FORMATS = ('folder', 'nyu-test', 'tum', '7scenes')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')
#: Default stamp of the first frame for datasets without timestamps (2023-11-14T22:13:20Z);
#: non-zero because many tools read a zero stamp as "unset".
DEFAULT_START_NS = 1_700_000_000 * 10**9

#: Published intrinsics (fx, fy, cx, cy) and the image size they belong to.
NYU_INTRINSICS = ((518.8579, 519.46961, 325.58245, 253.73617), (640, 480))
SEVEN_SCENES_INTRINSICS = ((585.0, 585.0, 320.0, 240.0), (640, 480))
TUM_INTRINSICS = {
    'freiburg1': ((517.3, 516.5, 318.6, 255.3), (640, 480)),
    'freiburg2': ((520.9, 521.0, 325.1, 249.7), (640, 480)),
    'freiburg3': ((535.4, 539.2, 320.1, 247.6), (640, 480)),
    'default': ((525.0, 525.0, 319.5, 239.5), (640, 480)),
}
SEVEN_SCENES_INVALID = 65535


@dataclass
class Frame:
    """One RGB frame, its optional ground-truth depth and camera-to-world pose."""

    stamp_ns: int
    rgb_path: Optional[Path] = None
    depth_path: Optional[Path] = None
    depth_index: Optional[int] = None
    depth_stamp_ns: Optional[int] = None
    pose: Optional[np.ndarray] = None


@dataclass
class Dataset:
    """A sequence of frames with one camera matrix valid for every frame's image size."""

    name: str
    root: Path
    K: np.ndarray
    width: int
    height: int
    frames: List[Frame]
    depth_unit: float = 0.001
    depth_invalid: Tuple[int, ...] = (0,)
    depth_stack: Optional[np.ndarray] = None
    images: Optional[np.ndarray] = None
    depths: Optional[np.ndarray] = None
    info: Dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        return bool(self.frames) and all(
            f.depth_path is not None or f.depth_index is not None for f in self.frames)

    @property
    def has_pose(self) -> bool:
        return bool(self.frames) and all(f.pose is not None for f in self.frames)

    def rgb(self, index: int) -> np.ndarray:
        """RGB image of frame `index` (HxWx3 uint8), checked against the dataset's size."""
        if self.images is not None:
            return np.ascontiguousarray(self.images[index])
        path = self.frames[index].rgb_path
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CommandError(f'cannot read image {path} (missing, empty or corrupt)')
        if image.shape[:2] != (self.height, self.width):
            raise CommandError(
                f'image {path} is {image.shape[1]}x{image.shape[0]}, but the sequence '
                f'is {self.width}x{self.height}; all frames must share one camera')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def depth(self, index: int) -> Optional[np.ndarray]:
        """Ground-truth depth of frame `index` in metres (float32, NaN = no measurement)."""
        frame = self.frames[index]
        if self.depths is not None:
            depth = np.asarray(self.depths[index], dtype=np.float32).copy()
            depth[~(depth > 0)] = np.nan
            return depth
        if frame.depth_index is not None and self.depth_stack is not None:
            depth = np.asarray(self.depth_stack[frame.depth_index], dtype=np.float32).copy()
            depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
            return depth
        if frame.depth_path is None:
            return None
        return load_depth_file(frame.depth_path, self.depth_unit, self.depth_invalid)


def load_depth_file(path: Path, unit: float, invalid: Sequence[int] = (0,)) -> np.ndarray:
    """Read a 16-bit PNG (value x unit metres) or a .npy (metres) depth map."""
    path = Path(path)
    if path.suffix == '.npy':
        try:
            depth = np.load(path).astype(np.float32)
        except (OSError, ValueError) as error:
            raise CommandError(f'cannot read depth {path}: {error}') from None
        if depth.ndim != 2:
            raise CommandError(f'depth {path} has shape {depth.shape}, expected HxW')
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        return depth
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise CommandError(f'cannot read depth image {path} (missing, empty or corrupt)')
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.float32):
        raise CommandError(
            f'depth image {path} is {raw.dtype} with shape {raw.shape}; expected a single-channel '
            '16-bit PNG')
    depth = raw.astype(np.float32)
    bad = np.isin(raw, np.asarray(invalid, dtype=raw.dtype)) if raw.dtype == np.uint16 else \
        ~np.isfinite(depth)
    depth *= np.float32(unit)
    depth[bad | (depth <= 0)] = np.nan
    return depth


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def scaled_intrinsics(known: Tuple[Tuple[float, float, float, float], Tuple[int, int]],
                      width: int, height: int) -> np.ndarray:
    """Rescale published intrinsics to the actual image size (e.g. a 320x240 export)."""
    (fx, fy, cx, cy), (w0, h0) = known
    sx, sy = width / w0, height / h0
    return intrinsics_matrix(fx * sx, fy * sy, cx * sx, cy * sy)


def parse_intrinsics(spec: str) -> np.ndarray:
    """`fx,fy,cx,cy`, or a file: 4 numbers, a 3x3 matrix, or a ROS camera_info YAML."""
    text = spec.strip()
    if re.fullmatch(r'[-+0-9.eE]+(\s*,\s*[-+0-9.eE]+){3}', text):
        return intrinsics_matrix(*(float(v) for v in text.split(',')))
    path = Path(spec)
    if not path.is_file():
        raise CommandError(
            f'intrinsics {spec!r} is neither "fx,fy,cx,cy" nor a readable file')
    content = path.read_text(errors='replace')
    if path.suffix in ('.yaml', '.yml'):
        import yaml
        try:
            data = yaml.safe_load(content) or {}
        except yaml.YAMLError as error:
            raise CommandError(f'intrinsics file {path} is not valid YAML: {error}') from None
        values = None
        if isinstance(data, dict):
            matrix = data.get('camera_matrix') or data.get('K') or data.get('k')
            if isinstance(matrix, dict):
                matrix = matrix.get('data')
            if isinstance(matrix, list) and len(matrix) == 9:
                values = [float(v) for v in matrix]
            elif all(k in data for k in ('fx', 'fy', 'cx', 'cy')):
                return intrinsics_matrix(*(float(data[k]) for k in ('fx', 'fy', 'cx', 'cy')))
        if values is None:
            raise CommandError(
                f'intrinsics file {path} has no camera_matrix/K (9 values) or fx, fy, cx, cy')
        return _checked_matrix(np.array(values).reshape(3, 3), path)
    try:
        numbers = [float(v) for v in content.replace(',', ' ').split()]
    except ValueError:
        raise CommandError(f'intrinsics file {path} must contain only numbers') from None
    if len(numbers) == 4:
        return intrinsics_matrix(*numbers)
    if len(numbers) == 9:
        return _checked_matrix(np.array(numbers).reshape(3, 3), path)
    raise CommandError(
        f'intrinsics file {path} has {len(numbers)} numbers; expected 4 (fx fy cx cy) or 9 (K)')


def _checked_matrix(K: np.ndarray, source: Path) -> np.ndarray:
    if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        raise CommandError(f'intrinsics in {source} are not a pinhole camera matrix: {K.tolist()}')
    return K.astype(np.float64)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', path.name)]


def _list_images(folder: Path) -> List[Path]:
    return sorted((p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


def _image_size(path: Path) -> Tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CommandError(f'cannot read image {path} (missing, empty or corrupt)')
    return image.shape[1], image.shape[0]


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise CommandError(f'{what} {path} is not a directory')
    return path


def _even_stamps(count: int, fps: float, start_ns: int) -> List[int]:
    if fps <= 0:
        raise CommandError(f'--fps must be positive, got {fps}')
    return [start_ns + int(round(i * 1e9 / fps)) for i in range(count)]


def load_folder(src: Path, intrinsics: Optional[str] = None, depth_dir: Optional[Path] = None,
                depth_unit: Optional[float] = None, fps: float = 30.0,
                start_ns: int = DEFAULT_START_NS, need_intrinsics: bool = True) -> Dataset:
    """
    Images in `src` (natural sort), optional depth with the same file stems in `depth_dir`.

    `need_intrinsics=False` (scale calibration) accepts a folder without intrinsics; K is then
    a placeholder with the focal length equal to the image width.
    """
    src = _require_dir(src, 'image folder')
    images = _list_images(src)
    if not images:
        raise CommandError(f'image folder {src} contains no images ({", ".join(IMAGE_SUFFIXES)})')
    width, height = _image_size(images[0])
    if intrinsics is None:
        for name in ('intrinsics.txt', 'camera-intrinsics.txt', 'camera_info.yaml'):
            if (src / name).is_file():
                intrinsics = str(src / name)
                break
        else:
            if need_intrinsics:
                raise CommandError(
                    f'no intrinsics for image folder {src}: pass --intrinsics fx,fy,cx,cy or a '
                    'file, or put intrinsics.txt next to the images')
            intrinsics = f'{width},{width},{width / 2},{height / 2}'
    K = parse_intrinsics(intrinsics)
    stamps = _even_stamps(len(images), fps, start_ns)
    frames = [Frame(stamp_ns=s, rgb_path=p) for s, p in zip(stamps, images)]
    if depth_dir is not None:
        depth_dir = _require_dir(depth_dir, 'depth folder')
        by_stem = {p.stem: p for p in depth_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in ('.png', '.npy', '.tif', '.tiff')}
        for frame in frames:
            match = by_stem.get(frame.rgb_path.stem)
            if match is None:
                raise CommandError(
                    f'no depth for image {frame.rgb_path.name} in {depth_dir} (expected '
                    f'{frame.rgb_path.stem}.png or .npy); image and depth counts must match')
            frame.depth_path = match
            frame.depth_stamp_ns = frame.stamp_ns
    return Dataset(name='folder', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=0.001 if depth_unit is None else depth_unit)


def load_nyu_test(src: Path, intrinsics: Optional[str] = None,
                  depth_unit: Optional[float] = None, fps: float = 30.0,
                  start_ns: int = DEFAULT_START_NS) -> Dataset:
    """
    NYU Depth v2 test layouts.

    - `color/*` with `depth/*.png` (SC-SfMLearner layout, value / 5000 = metres) or `depth.npy`
      (N x H x W metres, e.g. the 654-image Eigen test split),
    - flat `rgb_*.jpg` + `sync_depth_*.png` (BTS/Metric3D layout, millimetres).
    """
    src = _require_dir(src, 'NYU folder')
    depth_stack = None
    if (src / 'color').is_dir():
        images = _list_images(src / 'color')
        if not images:
            raise CommandError(f'NYU folder {src / "color"} has no images')
        depth_files: List[Optional[Path]] = [None] * len(images)
        unit = 1.0 / 5000.0
        if (src / 'depth.npy').is_file():
            try:
                depth_stack = np.load(src / 'depth.npy', mmap_mode='r')
            except (OSError, ValueError) as error:
                raise CommandError(f'cannot read {src / "depth.npy"}: {error}') from None
            if depth_stack.ndim != 3 or len(depth_stack) != len(images):
                raise CommandError(
                    f'{src / "depth.npy"} must be N x H x W with N = {len(images)} images in '
                    f'{src / "color"}, got shape {depth_stack.shape}')
        elif (src / 'depth').is_dir():
            depth_list = sorted((p for p in (src / 'depth').iterdir()
                                 if p.suffix.lower() in ('.png', '.npy')), key=_natural_key)
            if len(depth_list) != len(images):
                raise CommandError(
                    f'mismatched NYU counts: {src / "depth"} has {len(depth_list)} depth maps '
                    f'for {len(images)} images in {src / "color"}')
            # pair by file stem, or by order when the two folders name their files differently
            by_stem = {p.stem: p for p in depth_list}
            depth_files = [by_stem[p.stem] for p in images] \
                if all(p.stem in by_stem for p in images) else list(depth_list)
    else:
        images = sorted(src.glob('rgb_*.jpg'), key=_natural_key) + \
            sorted(src.glob('rgb_*.png'), key=_natural_key)
        if not images:
            raise CommandError(
                f'{src} is not an NYU test layout: expected color/ (+ depth/ or depth.npy) or '
                'rgb_*.jpg + sync_depth_*.png')
        unit = 0.001
        depth_files = []
        for image in images:
            candidate = src / ('sync_depth_' + image.stem[len('rgb_'):] + '.png')
            depth_files.append(candidate if candidate.is_file() else None)
        missing = [i.name for i, d in zip(images, depth_files) if d is None]
        if missing and len(missing) != len(images):
            raise CommandError(f'mismatched NYU counts in {src}: no sync_depth_*.png for '
                               f'{", ".join(missing[:3])}')
    width, height = _image_size(images[0])
    if depth_stack is not None and depth_stack.shape[1:] != (height, width):
        raise CommandError(
            f'{src / "depth.npy"}: depth maps are {depth_stack.shape[2]}x{depth_stack.shape[1]} '
            f'but {images[0]} is {width}x{height}')
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        NYU_INTRINSICS, width, height)
    stamps = _even_stamps(len(images), fps, start_ns)
    frames = []
    for i, (stamp, image) in enumerate(zip(stamps, images)):
        frame = Frame(stamp_ns=stamp, rgb_path=image, depth_path=depth_files[i])
        if depth_stack is not None:
            frame.depth_index = i
        if frame.depth_path is not None or frame.depth_index is not None:
            frame.depth_stamp_ns = stamp
        frames.append(frame)
    return Dataset(name='nyu-test', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=unit if depth_unit is None else depth_unit,
                   depth_stack=depth_stack)


def read_tum_list(path: Path) -> List[Tuple[float, List[str]]]:
    """TUM `rgb.txt`/`depth.txt`/`groundtruth.txt`: `timestamp value...` lines, `#` comments."""
    if not path.is_file():
        raise CommandError(f'TUM list {path} not found')
    entries = []
    for number, line in enumerate(path.read_text(errors='replace').splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.replace(',', ' ').split()
        try:
            entries.append((float(parts[0]), parts[1:]))
        except (ValueError, IndexError):
            raise CommandError(f'{path}:{number}: expected "timestamp value", got {line!r}') \
                from None
    return entries


def _tum_list(src: Path, kind: str) -> List[Tuple[float, List[str]]]:
    """
    Read `kind.txt` (`rgb`, `depth`) of a TUM sequence, else list `kind/` by file name.

    Official sequences ship `rgb.txt`/`depth.txt`; without them, the images in `rgb/` and
    `depth/` must be named by their timestamps (`1341847980.722988.png`), as TUM names them.
    """
    listing = src / f'{kind}.txt'
    folder = src / kind
    if listing.is_file() or not folder.is_dir():
        return read_tum_list(listing)
    entries = []
    for path in _list_images(folder):
        try:
            entries.append((float(path.stem), [f'{kind}/{path.name}']))
        except ValueError:
            raise CommandError(f'{path}: without {listing.name}, TUM image names must be '
                               'timestamps') from None
    if not entries:
        raise CommandError(f'{folder} has no images and {src} has no {listing.name}')
    return sorted(entries)


def associate(first: np.ndarray, second: np.ndarray, max_difference: float
              ) -> List[Tuple[int, int]]:
    """TUM `associate.py`: one-to-one pairs, closest stamps first, |dt| < max_difference."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if len(first) == 0 or len(second) == 0:
        return []
    order = np.argsort(second, kind='stable')
    sorted_second = second[order]
    # Candidates: the two neighbours of each stamp in the other list (enough for max_dt below
    # the frame period), and symmetrically, so the greedy pass sees every close pair.
    pos = np.searchsorted(sorted_second, first)
    cand_i, cand_j = [], []
    for offset in (-1, 0):
        j = np.clip(pos + offset, 0, len(second) - 1)
        cand_i.append(np.arange(len(first)))
        cand_j.append(order[j])
    order_first = np.argsort(first, kind='stable')
    sorted_first = first[order_first]
    pos2 = np.searchsorted(sorted_first, second)
    for offset in (-1, 0):
        i = np.clip(pos2 + offset, 0, len(first) - 1)
        cand_i.append(order_first[i])
        cand_j.append(np.arange(len(second)))
    ci = np.concatenate(cand_i)
    cj = np.concatenate(cand_j)
    diff = np.abs(first[ci] - second[cj])
    keep = diff < max_difference
    ci, cj, diff = ci[keep], cj[keep], diff[keep]
    pairs = []
    used_i, used_j = set(), set()
    for k in np.lexsort((cj, ci, diff)):
        a, b = int(ci[k]), int(cj[k])
        if a in used_i or b in used_j:
            continue
        used_i.add(a)
        used_j.add(b)
        pairs.append((a, b))
    pairs.sort()
    return pairs


def _quat_to_matrix(t: Sequence[float], q: Sequence[float]) -> np.ndarray:
    x, y, z, w = q
    n = np.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / n, y / n, z / n, w / n
    pose = np.eye(4)
    pose[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    pose[:3, 3] = t
    return pose


def load_tum(src: Path, intrinsics: Optional[str] = None, max_difference: float = 0.02,
             depth_unit: Optional[float] = None) -> Dataset:
    """
    TUM RGB-D: `rgb.txt`/`depth.txt` associated like `associate.py`, depth / 5000.

    Each frame keeps its own camera stamps (RGB and depth differ by a few ms, as recorded);
    `groundtruth.txt`, when present, gives the pose nearest in time (within `max_difference`).
    A sequence without `rgb.txt`/`depth.txt` is read from the timestamp-named files in `rgb/`
    and `depth/`.
    """
    src = _require_dir(src, 'TUM sequence')
    rgb = _tum_list(src, 'rgb')
    depth = _tum_list(src, 'depth')
    if not rgb:
        raise CommandError(f'{src / "rgb.txt"} lists no images')
    if not depth:
        raise CommandError(f'{src / "depth.txt"} lists no depth maps')
    pairs = associate(np.array([t for t, _ in rgb]), np.array([t for t, _ in depth]),
                      max_difference)
    if not pairs:
        raise CommandError(
            f'no rgb.txt entry of {src} has a depth.txt entry within {max_difference} s')
    name = str(src.resolve()).lower()
    key = next((k for k in ('freiburg1', 'freiburg2', 'freiburg3')
                if k in name or k.replace('freiburg', 'fr') + '_' in name
                or k.replace('freiburg', 'fr') + '/' in name), 'default')
    first_image = src / rgb[pairs[0][0]][1][0]
    width, height = _image_size(first_image)
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        TUM_INTRINSICS[key], width, height)
    poses = None
    if (src / 'groundtruth.txt').is_file():
        poses = read_tum_list(src / 'groundtruth.txt')
    frames = []
    for i, j in pairs:
        t_rgb, (rgb_file, *_) = rgb[i]
        t_depth, (depth_file, *_) = depth[j]
        frames.append(Frame(stamp_ns=int(round(t_rgb * 1e9)), rgb_path=src / rgb_file,
                            depth_path=src / depth_file,
                            depth_stamp_ns=int(round(t_depth * 1e9))))
    if poses:
        times = np.array([t for t, _ in poses])
        for frame in frames:
            t = frame.stamp_ns * 1e-9
            k = int(np.argmin(np.abs(times - t)))
            if abs(times[k] - t) < max_difference and len(poses[k][1]) >= 7:
                values = [float(v) for v in poses[k][1][:7]]
                frame.pose = _quat_to_matrix(values[:3], values[3:7])
    return Dataset(name='tum', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=1.0 / 5000.0 if depth_unit is None else depth_unit,
                   info={'tum_camera': key})


def load_seven_scenes(src: Path, intrinsics: Optional[str] = None, fps: float = 30.0,
                      start_ns: int = DEFAULT_START_NS) -> Dataset:
    """
    7-Scenes sequence: `frame-NNNNNN.color.png`, `.depth.png` (mm, 65535 invalid), `.pose.txt`.

    Stamps follow the frame numbers at 30 Hz, so gaps in a subset stay visible.
    """
    src = _require_dir(src, '7-Scenes sequence')
    colors = sorted(src.glob('frame-*.color.png'), key=_natural_key)
    if not colors:
        raise CommandError(f'{src} has no frame-*.color.png (7-Scenes layout)')
    depths = sorted(src.glob('frame-*.depth.png'))
    if depths and len(depths) != len(colors):
        raise CommandError(
            f'mismatched 7-Scenes counts in {src}: {len(colors)} colour and {len(depths)} depth '
            'frames')
    width, height = _image_size(colors[0])
    if intrinsics is None and (src / 'camera-intrinsics.txt').is_file():
        intrinsics = str(src / 'camera-intrinsics.txt')
    K = parse_intrinsics(intrinsics) if intrinsics else scaled_intrinsics(
        SEVEN_SCENES_INTRINSICS, width, height)
    if fps <= 0:
        raise CommandError(f'--fps must be positive, got {fps}')
    frames = []
    for color in colors:
        stem = color.name[:-len('.color.png')]
        match = re.fullmatch(r'frame-(\d+)', stem)
        if match is None:
            raise CommandError(f'unexpected 7-Scenes file name {color.name}')
        stamp = start_ns + int(round(int(match.group(1)) * 1e9 / fps))
        frame = Frame(stamp_ns=stamp, rgb_path=color)
        depth = src / f'{stem}.depth.png'
        if depths:
            if not depth.is_file():
                raise CommandError(f'7-Scenes frame {color.name} has no {depth.name}')
            frame.depth_path = depth
            frame.depth_stamp_ns = stamp
        pose_file = src / f'{stem}.pose.txt'
        if pose_file.is_file():
            try:
                pose = np.array([float(v) for v in pose_file.read_text().split()])
            except ValueError:
                raise CommandError(f'pose file {pose_file} must hold 16 numbers') from None
            if pose.size != 16 or not np.all(np.isfinite(pose)):
                raise CommandError(f'pose file {pose_file} must hold 16 finite numbers')
            frame.pose = pose.reshape(4, 4)
        frames.append(frame)
    return Dataset(name='7scenes', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=0.001, depth_invalid=(0, SEVEN_SCENES_INVALID))


def from_arrays(images: np.ndarray, K: np.ndarray, depths: Optional[np.ndarray] = None,
                poses: Optional[np.ndarray] = None, fps: float = 30.0,
                start_ns: int = DEFAULT_START_NS, name: str = 'arrays') -> Dataset:
    """In-memory sequence (e.g. `training.data.synthetic.generate_sequence`) as a Dataset."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise CommandError(f'images must be N x H x W x 3 uint8, got {images.dtype} '
                           f'{images.shape}')
    if depths is not None and len(depths) != len(images):
        raise CommandError(f'mismatched counts: {len(images)} images, {len(depths)} depths')
    stamps = _even_stamps(len(images), fps, start_ns)
    frames = [Frame(stamp_ns=s, depth_index=i if depths is not None else None,
                    depth_stamp_ns=s if depths is not None else None,
                    pose=None if poses is None else np.asarray(poses[i], dtype=np.float64))
              for i, s in enumerate(stamps)]
    return Dataset(name=name, root=Path('.'), K=np.asarray(K, dtype=np.float64),
                   width=images.shape[2], height=images.shape[1], frames=frames,
                   images=images, depths=depths)


LOADERS: Dict[str, Callable[..., Dataset]] = {
    'folder': load_folder,
    'nyu-test': load_nyu_test,
    'tum': load_tum,
    '7scenes': load_seven_scenes,
}


def load_dataset(fmt: str, src: Path, **options) -> Dataset:
    """Dispatch on `--format`, passing only the options that reader understands."""
    if fmt not in LOADERS:
        raise CommandError(f'unknown dataset format {fmt!r}; choose from {", ".join(FORMATS)}')
    import inspect
    loader = LOADERS[fmt]
    accepted = inspect.signature(loader).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    src = Path(src)
    if not src.exists():
        raise CommandError(f'dataset path {src} does not exist')
    return loader(src, **kwargs)
