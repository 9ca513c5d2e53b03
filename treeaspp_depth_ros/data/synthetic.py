"""
Procedural indoor video with exact depth, intrinsics and camera trajectory.

Rooms are axis-aligned boxes with textured walls, floor and ceiling, furnished with textured
boxes (cabinets, tables, pictures on the walls) and lit by a ceiling lamp. Frames are rendered by
vectorised ray casting in numpy. Shading is Lambertian, so a surface point has the same colour
in every view: the brightness-constancy assumption of self-supervised view synthesis holds.

Trajectories: ``forward`` moves along the room with almost no rotation (the paper's ideal
training motion, "no rotation + moderate translation"), ``rotate`` turns in place (the motion
that makes indoor self-supervision fail), ``mixed`` walks forward while looking around.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple, Union

import cv2
import numpy as np

from .errors import DataError
from .intrinsics import intrinsics_from_fov
from .sc_depth import DEPTH_PNG_SCALE

TRAJECTORIES = ('forward', 'rotate', 'mixed')
#: horizontal field of view of the virtual camera (NYUv2's Kinect: about 63 degrees)
DEFAULT_HFOV_DEG = 63.0
#: camera translation per frame for `forward` / `mixed` (metres)
DEFAULT_STEP_M = 0.04
TEXTURE_SIZE = 256
#: pre-filtered texture levels (mip-map): level l is blurred for 2**l texels per pixel
MIP_LEVELS = 6

_CAMERA_CLEARANCE_M = 0.6
_BASE_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class SyntheticSequence:
    """A rendered video: frames, z-depth (metres), pinhole intrinsics, camera-to-world poses."""

    images: np.ndarray
    depths: np.ndarray
    intrinsics: np.ndarray
    poses: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def camera_heights(self) -> np.ndarray:
        """Height of each camera centre above the floor (metres; the floor is the plane z=0)."""
        return self.poses[:, 2, 3].copy()

    @property
    def camera_down(self) -> np.ndarray:
        """World down (-z) in each camera's optical frame `[N, 3]`: what an IMU or URDF gives."""
        return -self.poses[:, 2, :3].copy()


@dataclass(frozen=True)
class _Scene:
    room: np.ndarray            # (2, 3) lower / upper corner
    boxes: np.ndarray           # (M, 2, 3)
    textures: np.ndarray        # (L, T, S, S) float32 in [0, 1], mip levels
    material_texture: np.ndarray    # (6 + M,) texture index per surface
    material_period: np.ndarray     # (6 + M,) metres per texture tile
    material_color: np.ndarray      # (6 + M, 3) albedo
    material_contrast: np.ndarray   # (6 + M,)
    material_offset: np.ndarray     # (6 + M, 2) texture offset in texels
    light: np.ndarray           # (3,)


def generate_sequence(seed: int, num_frames: int, width: int, height: int,
                      trajectory: str = 'forward', hfov_deg: float = DEFAULT_HFOV_DEG,
                      step_m: float = DEFAULT_STEP_M, supersample: int = 1) -> SyntheticSequence:
    """
    Render `num_frames` of a random room (deterministic for a seed).

    `supersample` renders s x s rays per pixel and averages them (anti-aliasing; depth is the
    mean z of the samples).
    """
    if trajectory not in TRAJECTORIES:
        raise DataError(f'unknown trajectory {trajectory!r}; choose one of {TRAJECTORIES}')
    if num_frames < 1 or width < 8 or height < 8:
        raise DataError(f'need num_frames >= 1 and an image of at least 8x8, got '
                        f'{num_frames} frames of {width}x{height}')
    rng = np.random.default_rng(seed)
    room = np.array([[0.0, 0.0, 0.0],
                     [rng.uniform(3.5, 5.5), rng.uniform(6.0, 8.5), rng.uniform(2.5, 3.0)]])
    poses = _trajectory(rng, room, num_frames, trajectory, step_m)
    scene = _make_scene(rng, room, _keep_out_points(poses))
    K = intrinsics_from_fov(width, height, hfov_deg)
    rays = _subpixel_rays(K, width, height, max(1, int(supersample)))
    images = np.empty((num_frames, height, width, 3), np.uint8)
    depths = np.empty((num_frames, height, width), np.float32)
    for i, pose in enumerate(poses):
        images[i], depths[i] = _render(scene, pose, rays, height, width, 1.0 / K[0, 0])
    return SyntheticSequence(images, depths, K, poses)


def save_sequence(sequence: SyntheticSequence, folder: Union[str, Path],
                  image_ext: str = '.jpg') -> Path:
    """Write a sequence in the SC-Depth scene layout (frames, cam.txt, depth/*.png, poses.txt)."""
    folder = Path(folder)
    (folder / 'depth').mkdir(parents=True, exist_ok=True)
    for i, (rgb, depth) in enumerate(zip(sequence.images, sequence.depths)):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_ext == '.jpg' else []
        if not cv2.imwrite(str(folder / f'{i:07d}{image_ext}'), bgr, params):
            raise OSError(f'cannot write {folder / f"{i:07d}{image_ext}"}')
        depth_png = np.clip(np.round(depth * DEPTH_PNG_SCALE), 0, 65535).astype(np.uint16)
        cv2.imwrite(str(folder / 'depth' / f'{i:07d}.png'), depth_png)
    np.savetxt(folder / 'cam.txt', sequence.intrinsics, fmt='%.6f')
    np.savetxt(folder / 'poses.txt', sequence.poses[:, :3, :].reshape(len(sequence), 12),
               fmt='%.8f')
    return folder


# --- camera trajectory -------------------------------------------------------------------------

def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation; yaw 0 looks along +y with z up (optical frame x right, y down)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return rz @ rx @ _BASE_ROTATION @ r_roll


def _smooth_noise(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """Make a smooth random signal (sum of slow sinusoids): hand-held jitter."""
    t = np.arange(n, dtype=np.float64)
    freqs = rng.uniform(0.01, 0.06, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    return amplitude * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None]).mean(0)


def _triangle(distance: np.ndarray, length: float) -> np.ndarray:
    """Ping-pong along a segment: long videos go back and forth, never through walls."""
    phase = np.mod(distance, 2 * length)
    return np.where(phase <= length, phase, 2 * length - phase)


def _trajectory(rng: np.random.Generator, room: np.ndarray, n: int, kind: str,
                step_m: float) -> np.ndarray:
    size = room[1]
    yaw = np.zeros(n)
    pitch = np.full(n, np.radians(rng.uniform(-12.0, 3.0)))
    roll = _smooth_noise(rng, n, np.radians(0.5))
    if kind == 'rotate':
        centre = np.array([size[0] / 2 + rng.uniform(-0.3, 0.3),
                           size[1] / 2 + rng.uniform(-0.5, 0.5), rng.uniform(1.2, 1.6)])
        rate = np.radians(rng.uniform(1.5, 3.0)) * rng.choice([-1.0, 1.0])
        yaw = rng.uniform(-np.pi, np.pi) + rate * np.arange(n)
        wobble = 0.03 * np.stack([np.cos(yaw), np.sin(yaw), np.zeros(n)], 1)
        positions = centre + wobble
    else:
        start = np.array([size[0] / 2 + rng.uniform(-0.4, 0.4), rng.uniform(0.5, 0.9),
                          rng.uniform(1.1, 1.6)])
        heading = np.radians(rng.uniform(-10.0, 10.0))
        direction = np.array([-np.sin(heading), np.cos(heading), 0.0])
        length = max(0.5, (size[1] - 2.2 - start[1]) / np.cos(heading))
        step = step_m * rng.uniform(0.8, 1.2)
        along = _triangle(step * np.arange(n), length)
        positions = start + along[:, None] * direction
        positions[:, 0] += _smooth_noise(rng, n, 0.05)
        positions[:, 2] += _smooth_noise(rng, n, 0.03)
        # looking up to 30 degrees off the walking direction: sideways parallax everywhere in
        # the image, not only away from the focus of expansion (still a pure translation)
        look = np.radians(rng.uniform(-30.0, 30.0))
        yaw = heading + look + _smooth_noise(rng, n, np.radians(1.0))
        if kind == 'mixed':
            period = rng.uniform(30.0, 60.0)
            yaw = yaw + np.radians(25.0) * np.sin(2 * np.pi * np.arange(n) / period)
            pitch = pitch + _smooth_noise(rng, n, np.radians(6.0))
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        poses[i, :3, :3] = _rotation(yaw[i], pitch[i], roll[i])
    poses[:, :3, 3] = positions
    return poses


# --- scene -------------------------------------------------------------------------------------

def _fft_noise(rng: np.random.Generator, size: int, beta: float, stretch: float = 1.0,
               cutoff: float = 0.25) -> np.ndarray:
    """Tileable 1/f^beta noise in [0, 1] (periodic, so textures repeat without seams)."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt((fx * stretch) ** 2 + (fy / stretch) ** 2)
    radius[0, 0] = 1.0
    amplitude = radius ** (-beta / 2) * (radius < cutoff)
    amplitude[0, 0] = 0.0
    spectrum = amplitude * np.exp(2j * np.pi * rng.random((size, size)))
    noise = np.real(np.fft.ifft2(spectrum))
    noise -= noise.min()
    return (noise / max(noise.max(), 1e-12)).astype(np.float32)


def _make_textures(rng: np.random.Generator, size: int = TEXTURE_SIZE) -> np.ndarray:
    v, u = np.mgrid[0:size, 0:size] / size
    plaster = _fft_noise(rng, size, 2.0)
    wood = 0.6 * _fft_noise(rng, size, 2.5, stretch=6.0) + 0.4 * (
        0.5 + 0.5 * np.sin(2 * np.pi * (8 * v + 2 * _fft_noise(rng, size, 3.0))))
    tiles_per_side = 4
    tile_id = (np.floor(u * tiles_per_side) * tiles_per_side + np.floor(v * tiles_per_side))
    tile_shade = rng.uniform(0.35, 0.9, tiles_per_side ** 2)[tile_id.astype(int)]
    grout = (np.minimum(np.mod(u * tiles_per_side, 1), np.mod(v * tiles_per_side, 1)) < 0.04)
    tiles = np.where(grout, 0.1, tile_shade + 0.25 * (_fft_noise(rng, size, 1.5) - 0.5))
    rows = 8
    row = np.floor(v * rows)
    brick_u = np.mod(u * 4 + 0.5 * np.mod(row, 2), 1)
    mortar = (np.mod(v * rows, 1) < 0.08) | (brick_u < 0.04)
    brick_shade = rng.uniform(0.45, 0.85, 64)[(row * 4 + np.floor(u * 4)).astype(int) % 64]
    bricks = np.where(mortar, 0.9, brick_shade + 0.2 * (_fft_noise(rng, size, 1.5) - 0.5))
    blobs = _fft_noise(rng, size, 3.5)
    poster = np.floor(blobs * 5) / 4 * 0.8 + 0.2 * _fft_noise(rng, size, 1.0)
    carpet = 0.5 * _fft_noise(rng, size, 1.2, cutoff=0.35) + 0.5 * _fft_noise(rng, size, 2.5)
    stack = np.stack([plaster, wood, tiles, bricks, poster, carpet]).astype(np.float32)
    return np.clip(stack, 0.0, 1.0)


def _mip_levels(textures: np.ndarray) -> np.ndarray:
    """
    Blur each texture for 1, 2, 4, ... texels per pixel (periodic Gaussian, via FFT).

    Sampling a texture finer than the pixel grid aliases: the same surface point would get a
    different colour from every viewpoint, which is noise for a photometric loss.
    """
    size = textures.shape[-1]
    freq = np.fft.fftfreq(size)
    radius2 = freq[:, None] ** 2 + freq[None, :] ** 2
    spectrum = np.fft.fft2(textures)
    levels = [textures]
    for level in range(1, MIP_LEVELS):
        sigma = 0.5 * 2 ** level
        gain = np.exp(-2 * (np.pi * sigma) ** 2 * radius2)
        levels.append(np.real(np.fft.ifft2(spectrum * gain)).astype(np.float32))
    return np.stack(levels)


# texture indices in `_make_textures`
_PLASTER, _WOOD, _TILES, _BRICKS, _POSTER, _CARPET = range(6)


def _keep_out_points(poses: np.ndarray) -> np.ndarray:
    """Camera positions and the floor ahead of them, where no furniture may stand."""
    ahead = poses[:, :3, 2] * np.array([1.0, 1.0, 0.0])
    ahead /= np.maximum(np.linalg.norm(ahead, axis=1, keepdims=True), 1e-9)
    return np.concatenate([poses[:, :3, 3] + d * ahead for d in (0.0, 0.5, 1.0)])


def _make_scene(rng: np.random.Generator, room: np.ndarray, path: np.ndarray) -> _Scene:
    size = room[1]
    boxes = _place_furniture(rng, size, path)
    textures = _mip_levels(_make_textures(rng))
    wall_texture = rng.choice([_PLASTER, _BRICKS, _PLASTER])
    wall_color = rng.uniform(0.55, 0.95, 3)
    # surfaces 0..5: -x, +x, -y, +y walls / -z floor / +z ceiling (axis * 2 + side)
    tex = [wall_texture, wall_texture, wall_texture, rng.choice([_BRICKS, _PLASTER]),
           rng.choice([_WOOD, _TILES, _CARPET]), _PLASTER]
    colors = [wall_color * rng.uniform(0.85, 1.1, 3) for _ in range(4)]
    colors += [rng.uniform([0.35, 0.25, 0.15], [0.8, 0.6, 0.45]), np.full(3, 0.9)]
    periods = [rng.uniform(0.8, 1.6) for _ in range(4)] + [rng.uniform(0.8, 1.6), 2.5]
    contrast = [rng.uniform(0.4, 0.7) for _ in range(5)] + [0.15]
    for lo, hi in boxes:
        thin = (hi - lo).min() < 0.1
        tex.append(_POSTER if thin else rng.choice([_WOOD, _PLASTER, _CARPET, _TILES]))
        colors.append(rng.uniform(0.2, 0.95, 3))
        periods.append(rng.uniform(0.4, 1.0) if thin else rng.uniform(0.5, 1.2))
        contrast.append(rng.uniform(0.6, 0.9) if thin else rng.uniform(0.4, 0.8))
    count = len(tex)
    light = np.array([size[0] / 2, size[1] * rng.uniform(0.4, 0.6), size[2] - 0.3])
    return _Scene(room=room.astype(np.float32), boxes=boxes.astype(np.float32),
                  textures=textures, material_texture=np.array(tex, np.int64),
                  material_period=np.array(periods, np.float32),
                  material_color=np.clip(np.array(colors, np.float32), 0.0, 1.0),
                  material_contrast=np.array(contrast, np.float32),
                  material_offset=rng.uniform(0, TEXTURE_SIZE, (count, 2)).astype(np.float32),
                  light=light.astype(np.float32))


def _place_furniture(rng: np.random.Generator, size: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Random boxes on the floor and pictures on the walls, clear of the camera path."""
    boxes: List[np.ndarray] = []
    target = rng.integers(6, 11)
    for _ in range(400):
        if len(boxes) >= target:
            break
        if rng.random() < 0.3:
            box = _wall_picture(rng, size)
        else:
            dims = np.array([rng.uniform(0.4, 1.6), rng.uniform(0.4, 1.6), rng.uniform(0.4, 2.0)])
            corner = np.array([rng.uniform(0.0, size[0] - dims[0]),
                               rng.uniform(0.0, size[1] - dims[1]), 0.0])
            box = np.stack([corner, corner + dims])
        if _clearance(box, path) > _CAMERA_CLEARANCE_M:
            boxes.append(box)
    return np.array(boxes, np.float64).reshape(-1, 2, 3)


def _wall_picture(rng: np.random.Generator, size: np.ndarray) -> np.ndarray:
    axis = int(rng.integers(0, 2))
    other = 1 - axis
    extent = np.array([0.0, 0.0, rng.uniform(0.4, 1.0)])
    extent[other] = rng.uniform(0.5, 1.4)
    extent[axis] = 0.03
    corner = np.zeros(3)
    corner[axis] = 0.0 if rng.random() < 0.5 else size[axis] - 0.03
    corner[other] = rng.uniform(0.1, size[other] - extent[other] - 0.1)
    corner[2] = rng.uniform(1.0, size[2] - extent[2] - 0.2)
    return np.stack([corner, corner + extent])


def _clearance(box: np.ndarray, points: np.ndarray) -> float:
    """Smallest horizontal distance from the camera positions to a box footprint."""
    nearest = np.clip(points[:, :2], box[0, :2], box[1, :2])
    return float(np.min(np.linalg.norm(points[:, :2] - nearest, axis=1)))


# --- rendering ---------------------------------------------------------------------------------

def _subpixel_rays(K: np.ndarray, width: int, height: int, samples: int) -> np.ndarray:
    """Camera rays with unit z for s x s sub-pixel positions, shape (s*s, 3, H*W)."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    rays = []
    for dy in offsets:
        for dx in offsets:
            u = (np.arange(width) + dx - K[0, 2]) / K[0, 0]
            v = (np.arange(height) + dy - K[1, 2]) / K[1, 1]
            uu, vv = np.meshgrid(u, v)
            rays.append(np.stack([uu, vv, np.ones_like(uu)]).reshape(3, -1))
    return np.stack(rays).astype(np.float32)


def _render(scene: _Scene, pose: np.ndarray, rays: np.ndarray, height: int, width: int,
            pixel_angle: float) -> Tuple[np.ndarray, np.ndarray]:
    rotation = pose[:3, :3].astype(np.float32)
    origin = pose[:3, 3].astype(np.float32)[:, None]
    colors = np.zeros((3, rays.shape[2]), np.float32)
    depth = np.zeros(rays.shape[2], np.float32)
    for sub in rays:
        rgb, z = _shade(scene, origin, rotation @ sub, pixel_angle)
        colors += rgb
        depth += z
    colors /= len(rays)
    depth /= len(rays)
    image = np.clip(colors * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return image.reshape(3, height, width).transpose(1, 2, 0), depth.reshape(height, width)


def _max3(a: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(a[0], a[1]), a[2])


def _min3(a: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(a[0], a[1]), a[2])


def _intersect(scene: _Scene, origin: np.ndarray, direction: np.ndarray
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of every ray (3 x P): distance (= z-depth for unit-z rays), surface, axis."""
    direction = np.where(np.abs(direction) < 1e-9, np.float32(1e-9), direction)
    inverse = 1.0 / direction
    positive = direction > 0
    # inside the room: the first wall / floor / ceiling each ray leaves through
    bound = np.where(positive, scene.room[1][:, None], scene.room[0][:, None])
    t_axes = (bound - origin) * inverse
    axis = t_axes.argmin(0)
    columns = np.arange(direction.shape[1])
    t = t_axes[axis, columns]
    surface = axis * 2 + positive[axis, columns]
    if len(scene.boxes):
        # slab test against all boxes at once, laid out (axis, box, ray) for contiguous maths
        lower = (scene.boxes[:, 0].T[:, :, None] - origin[:, :, None]) * inverse[:, None]
        upper = (scene.boxes[:, 1].T[:, :, None] - origin[:, :, None]) * inverse[:, None]
        t_min = np.minimum(lower, upper)
        t_near = _max3(t_min)
        t_far = _min3(np.maximum(lower, upper))
        t_near = np.where((t_near <= t_far) & (t_near > 1e-4), t_near, np.inf)
        box = t_near.argmin(0)
        t_box = t_near[box, columns]
        hit = t_box < t
        t = np.where(hit, t_box, t)
        surface = np.where(hit, 6 + box, surface)
        axis = np.where(hit, t_min[:, box, columns].argmax(0), axis)
    return t, surface, axis


def _shade(scene: _Scene, origin: np.ndarray, direction: np.ndarray, pixel_angle: float
           ) -> Tuple[np.ndarray, np.ndarray]:
    t, surface, axis = _intersect(scene, origin, direction)
    columns = np.arange(len(t))
    points = origin + t * direction
    # texture coordinates: the two world axes spanning the hit face
    period = scene.material_period[surface]
    offset = scene.material_offset[surface]
    u = points[(axis + 1) % 3, columns] / period * TEXTURE_SIZE + offset[:, 0]
    v = points[(axis + 2) % 3, columns] / period * TEXTURE_SIZE + offset[:, 1]
    # mip level from the pixel footprint (texels per pixel), wider on oblique surfaces
    cosine = np.abs(direction[axis, columns]) / np.sqrt((direction * direction).sum(0))
    footprint = t * pixel_angle * TEXTURE_SIZE / period / np.maximum(cosine, 0.25)
    level = np.clip(np.log2(np.maximum(footprint, 1.0)), 0, MIP_LEVELS - 1.001)
    low = level.astype(np.int64)
    blend = (level - low).astype(np.float32)
    index = scene.material_texture[surface]
    texture = (_bilinear(scene.textures, low, index, u, v) * (1 - blend)
               + _bilinear(scene.textures, low + 1, index, u, v) * blend)
    contrast = scene.material_contrast[surface]
    albedo = scene.material_color[surface].T * (1 - contrast + 2 * contrast * texture)
    # Lambertian lamp + ambient; the normal faces the camera side of the hit face
    to_light = scene.light[:, None] - points
    distance = np.sqrt((to_light * to_light).sum(0))
    facing = -np.sign(direction[axis, columns]) * to_light[axis, columns]
    lambert = np.maximum(facing / np.maximum(distance, 1e-6), 0.0)
    light = 0.3 + 0.9 * lambert / (1.0 + (distance / 4.0) ** 2)
    return np.clip(albedo * light, 0.0, 1.0), t.astype(np.float32)


def _bilinear(textures: np.ndarray, level: np.ndarray, index: np.ndarray, u: np.ndarray,
              v: np.ndarray) -> np.ndarray:
    """Sample periodic textures at float texel coordinates (one texture and level per sample)."""
    size = textures.shape[-1]
    flat = textures.reshape(-1)
    base = (level * textures.shape[1] + index) * (size * size)
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = (u - u0).astype(np.float32)
    fv = (v - v0).astype(np.float32)
    x0 = u0.astype(np.int64) % size
    y0 = v0.astype(np.int64) % size
    x1 = (x0 + 1) % size
    row0 = base + y0 * size
    row1 = base + ((y0 + 1) % size) * size
    top = flat.take(row0 + x0) * (1 - fu) + flat.take(row0 + x1) * fu
    bottom = flat.take(row1 + x0) * (1 - fu) + flat.take(row1 + x1) * fu
    return top * (1 - fv) + bottom * fv
