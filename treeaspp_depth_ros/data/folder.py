"""A plain folder of images with an intrinsics file and optional depth maps of the same names."""

import math
from pathlib import Path
from typing import Optional

from .errors import DataError
from .files import IMAGE_SUFFIXES, list_images, require_dir
from .images import image_size, split_color_images
from .intrinsics import find_intrinsics_file, intrinsics_from_fov, parse_intrinsics
from .records import Dataset, DEFAULT_START_NS, Frame, frame_stamps

#: intrinsics files looked for next to the images, first match wins
INTRINSICS_FILES = ('intrinsics.txt', 'camera-intrinsics.txt', 'camera_info.yaml', 'cam.txt')
DEPTH_SUFFIXES = ('.png', '.npy', '.tif', '.tiff')
#: the placeholder camera's field of view: 2 atan(1/2), a focal length equal to the image width
PLACEHOLDER_FOV_DEG = 2.0 * math.degrees(math.atan(0.5))


def load_folder(src: Path, intrinsics: Optional[str] = None, depth_dir: Optional[Path] = None,
                depth_unit: Optional[float] = None, fps: float = 30.0,
                start_ns: int = DEFAULT_START_NS, need_intrinsics: bool = True) -> Dataset:
    """
    Images in `src` (natural sort), optional depth with the same file stems in `depth_dir`.

    Single-channel 16-bit images in `src` are depth maps, not frames: they are left out and
    named in ``info['skipped_depth_images']``.

    `need_intrinsics=False` (scale calibration) accepts a folder without intrinsics; K is then
    a placeholder: the focal length equal to the image width, the principal point at the centre.
    """
    src = require_dir(src, 'image folder')
    images, depth_maps = split_color_images(list_images(src))
    if not images and depth_maps:
        raise DataError(
            f'image folder {src} holds only single-channel 16-bit images (depth maps such as '
            f'{depth_maps[0].name}), no colour frames')
    if not images:
        raise DataError(f'image folder {src} contains no images ({", ".join(IMAGE_SUFFIXES)})')
    width, height = image_size(images[0])
    if intrinsics is None:
        found = find_intrinsics_file(src, INTRINSICS_FILES)
        if found is not None:
            intrinsics = str(found)
        elif need_intrinsics:
            raise DataError(
                f'no intrinsics for image folder {src}: pass --intrinsics fx,fy,cx,cy or a '
                'file, or put intrinsics.txt next to the images')
    if intrinsics is not None:
        K = parse_intrinsics(intrinsics)
    else:
        K = intrinsics_from_fov(width, height, PLACEHOLDER_FOV_DEG)
    stamps = frame_stamps(range(len(images)), fps, start_ns)
    frames = [Frame(stamp_ns=s, rgb_path=p) for s, p in zip(stamps, images)]
    if depth_dir is not None:
        depth_dir = require_dir(depth_dir, 'depth folder')
        by_stem = {p.stem: p for p in depth_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in DEPTH_SUFFIXES}
        for frame in frames:
            match = by_stem.get(frame.rgb_path.stem)
            if match is None:
                raise DataError(
                    f'no depth for image {frame.rgb_path.name} in {depth_dir} (expected '
                    f'{frame.rgb_path.stem}.png or .npy); image and depth counts must match')
            frame.depth_path = match
            frame.depth_stamp_ns = frame.stamp_ns
    info = {}
    if depth_maps:  # what was left out, for the tools to say
        info['skipped_depth_images'] = ', '.join(p.name for p in depth_maps)
    return Dataset(name='folder', root=src, K=K, width=width, height=height, frames=frames,
                   depth_unit=0.001 if depth_unit is None else depth_unit, info=info)
