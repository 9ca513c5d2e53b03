"""
Does our depth feed SLAM? Open3D's RGB-D odometry and TSDF fusion as an independent consumer.

On the 7-Scenes redkitchen sequence (``../shared/data``, 50 frames with Kinect depth and
ground-truth poses) this benchmark

1. takes a checkpoint with a pose network (``--weights``), or trains one without labels on the
   sequence itself (``--steps`` self-supervised steps, the overfit_7scenes recipe with the
   baseline network: "adapt to the robot's own environment");
2. finds its metric scale twice: from the Kinect depth (``calibrate-scale --method
   ground-truth``) and from the poses used as odometry (``--method odometry``);
3. writes the bag (``make-bag``) and the SLAM bags (``bag-eval --record-out``) with each scale;
4. runs Open3D RGB-D odometry frame to frame, chains it, fuses a TSDF volume along the chained
   trajectory, and reports ATE RMSE (after a rigid alignment) and per-frame relative pose error
   for (a) the Kinect depth, (b) our depth with the ground-truth scale, (c) our depth with the
   odometry scale; a top-down PNG of the fused clouds of (a) and (c).

Open3D is a benchmark-only dependency (``pip install open3d`` into the venv).

Usage: python -m benchmarks.bench_slam [--weights CKPT | --steps 100] [--output JSON]
"""

import argparse
from pathlib import Path
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json
import cv2
import numpy as np
from treeaspp_depth_ros.bag import bagio, evaluation
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.bag.metric_scale import calibrate, calibrate_odometry
from treeaspp_depth_ros.checkpoint import atomic_torch_save, load_checkpoint, load_pose_net
from treeaspp_depth_ros.cli import main as cli
from treeaspp_depth_ros.conversions.camera_info import camera_info_to_K
from treeaspp_depth_ros.conversions.image import depth_image_msg_to_array, image_msg_to_rgb
from treeaspp_depth_ros.data.layouts import load_dataset
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.trajectory import trajectory_errors

DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / '7scenes-redkitchen'
SIZE = (128, 96)
#: odometry pairs: 5-30 cm apart (a robot's odometry is too noisy over shorter hops)
ODOMETRY_RANGE = (0.05, 0.3)
TSDF_CUBE_M = 5.0
TSDF_VOXEL_M = 0.02


def train_on_sequence(data: Path, steps: int, out: Path) -> Path:
    """Self-supervised training on the sequence itself (no depth labels): a checkpoint path."""
    from treeaspp_depth_training.train import train_from_config
    return train_from_config('synthetic_tiny', {
        'name': 'bench_slam', 'model.variant': 'baseline', 'data.format': '7scenes',
        'data.root': str(data), 'data.width': SIZE[0], 'data.height': SIZE[1],
        'data.sampling': 'pose', 'data.min_translation': 0.02, 'data.max_translation': 0.2,
        'data.max_rotation_deg': 10.0, 'val.format': '7scenes', 'val.root': str(data),
        'val.crop': None, 'val.stride': 2, 'optim.lr': 2e-4, 'optim.batch_size': 4,
        'optim.epochs': 1000, 'train.max_steps': steps, 'train.tensorboard': False,
        'train.checkpoint_every': 10 ** 9, 'train.output_dir': str(out)})


def scales(weights: Path, data: Path) -> Dict[str, Dict[str, float]]:
    """Ground-truth-depth and odometry scale of one checkpoint on the sequence."""
    estimator = DepthEstimator(weights, device='cpu', depth_scale=1.0)
    dataset = load_dataset('7scenes', data)

    def frames():
        for i, frame in enumerate(dataset.frames):
            pair = evaluation.Pair(index=i, image_ordinal=i, depth_ordinal=i,
                                   stamp_ns=frame.stamp_ns, depth_stamp_ns=frame.stamp_ns,
                                   bag_time_ns=frame.stamp_ns)
            yield pair, dataset.rgb(i), dataset.depth(i)
    truth = calibrate(estimator, frames(), 0.1, 10.0)
    odometry = calibrate_odometry(estimator, load_pose_net(load_checkpoint(weights)), dataset,
                                  *ODOMETRY_RANGE, max_gap=15)
    keep = ('global_scale', 'scale_ratio_cv', 'scale_ratio_p5', 'scale_ratio_p95')
    out = {'ground_truth': {k: float(truth[k]) for k in keep},
           'odometry': {k: float(odometry[k]) for k in keep}}
    out['ground_truth']['frames'] = int(truth['frames'])
    out['ground_truth']['abs_rel_global_scaled'] = float(truth['global_scaled']['abs_rel'])
    out['odometry']['pairs'] = int(odometry['pairs'])
    out['input_size'] = list(estimator.input_size)
    return out


def with_scale(weights: Path, scale: float, target: Path) -> Path:
    checkpoint = load_checkpoint(weights)
    checkpoint['depth_scale'] = float(scale)
    atomic_torch_save(checkpoint, target)
    return target


Frames = Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]


def read_frames(bag: Path, depth_topic: str) -> Frames:
    """RGB and depth (metres, NaN invalid) of a bag in stamp order, and the camera matrix."""
    reader = bagio.BagReader(bag)
    try:
        rgb, depth, K = {}, {}, None
        topics = ['/camera/image_raw', depth_topic, '/camera/camera_info']
        for topic, msgtype, timestamp, data in reader.messages(topics):
            msg = reader.decode(topic, msgtype, timestamp, data)
            stamp = msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec
            if topic == '/camera/image_raw':
                rgb[stamp] = image_msg_to_rgb(msg)
            elif topic == depth_topic:
                depth[stamp] = depth_image_msg_to_array(msg)
            elif K is None:
                K = camera_info_to_K(msg)
    finally:
        reader.close()
    stamps = sorted(set(rgb) & set(depth))
    return [rgb[s] for s in stamps], [depth[s] for s in stamps], K


def run_open3d(rgbs: List[np.ndarray], depths: List[np.ndarray], K: np.ndarray,
               max_depth: float = 4.0):
    """Chained frame-to-frame RGB-D odometry, then TSDF fusion along it: poses, cloud, fails."""
    import open3d as o3d
    h, w = depths[0].shape
    intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, K[0, 0], K[1, 1], K[0, 2], K[1, 2])

    def rgbd(i: int):
        depth = np.nan_to_num(depths[i].astype(np.float32), nan=0.0)
        return o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(rgbs[i])), o3d.geometry.Image(depth),
            depth_scale=1.0, depth_trunc=max_depth, convert_rgb_to_intensity=True)
    frames = [rgbd(i) for i in range(len(rgbs))]
    option = o3d.pipelines.odometry.OdometryOption()
    jacobian = o3d.pipelines.odometry.RGBDOdometryJacobianFromHybridTerm()
    poses, failures = [np.eye(4)], 0
    for i in range(1, len(frames)):
        ok, trans, _ = o3d.pipelines.odometry.compute_rgbd_odometry(
            frames[i - 1], frames[i], intrinsic, np.eye(4), jacobian, option)
        if not ok:
            failures += 1
            trans = np.eye(4)
        # trans maps points of frame i-1 into frame i: camera-to-world P_i = P_{i-1} trans^-1
        poses.append(poses[-1] @ np.linalg.inv(trans))
    # a cube around what the cameras look at (Open3D 0.20's ScalableTSDFVolume extracts
    # nothing from pip builds here; the uniform volume works)
    centre = np.mean([p[:3, 3] + 1.5 * p[:3, 2] for p in poses], axis=0)
    volume = o3d.pipelines.integration.UniformTSDFVolume(
        length=TSDF_CUBE_M, resolution=int(round(TSDF_CUBE_M / TSDF_VOXEL_M)),
        sdf_trunc=4 * TSDF_VOXEL_M,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8,
        origin=centre - TSDF_CUBE_M / 2)
    for i in range(len(frames)):
        color = o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(rgbs[i])),
            o3d.geometry.Image(np.nan_to_num(depths[i].astype(np.float32), nan=0.0)),
            depth_scale=1.0, depth_trunc=max_depth, convert_rgb_to_intensity=False)
        volume.integrate(color, intrinsic, np.linalg.inv(poses[i]))
    cloud = volume.extract_point_cloud()
    return np.array(poses), np.asarray(cloud.points), np.asarray(cloud.colors), failures


def top_down(points: np.ndarray, colors: np.ndarray, poses: np.ndarray, title: str,
             size: int = 420, extent: float = 2.5) -> np.ndarray:
    """
    Orthographic view from above in the first camera's frame: x right, z forward (up).

    The camera path (chained odometry) is drawn in black.
    """
    first = poses[0]
    local = (points - first[:3, 3]) @ first[:3, :3]
    image = np.full((size, size, 3), 255, np.uint8)
    order = np.argsort(-local[:, 1])      # lowest first, so what is higher is drawn on top
    local, colors = local[order], colors[order]
    u = ((local[:, 0] + extent) / (2 * extent) * (size - 1)).round().astype(int)
    v = ((extent - local[:, 2] + 0.5) / (2 * extent) * (size - 1)).round().astype(int)
    ok = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    image[v[ok], u[ok]] = (colors[ok] * 255).astype(np.uint8)
    path = (poses[:, :3, 3] - first[:3, 3]) @ first[:3, :3]
    pu = ((path[:, 0] + extent) / (2 * extent) * (size - 1)).round().astype(int)
    pv = ((extent - path[:, 2] + 0.5) / (2 * extent) * (size - 1)).round().astype(int)
    for a, b in zip(zip(pu[:-1], pv[:-1]), zip(pu[1:], pv[1:])):
        cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (0, 0, 0), 2)
    cv2.putText(image, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    return image


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=DATA)
    parser.add_argument('--weights', type=Path,
                        help='checkpoint with a pose network (default: train one here)')
    parser.add_argument('--steps', type=int, default=100, help='training steps (no --weights)')
    add_output_option(parser, 'slam.json')
    args = parser.parse_args(argv)
    args.output = resolve_output(args.output, 'slam.json')
    if not args.data.is_dir():
        print(f'{args.data} not present: nothing to benchmark', file=sys.stderr)
        return 1
    try:
        import open3d  # noqa: F401 - fail before training, not after
    except ImportError:
        print('needs Open3D: pip install open3d (a benchmark-only dependency)', file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix='bench_slam_'))
    started = time.perf_counter()
    weights = args.weights or train_on_sequence(args.data, args.steps, scratch / 'run')
    train_s = time.perf_counter() - started
    found = scales(weights, args.data)
    gt_scale = found['ground_truth']['global_scale']
    odom_scale = found['odometry']['global_scale']
    print(f'scale from the Kinect depth {gt_scale:.4g}, from odometry {odom_scale:.4g} '
          f'({odom_scale / gt_scale - 1:+.1%})', flush=True)

    bag = scratch / 'kitchen_bag'
    write_dataset_bag(load_dataset('7scenes', args.data), bag)
    truth = np.array([f.pose for f in load_dataset('7scenes', args.data).frames])
    runs: Dict[str, Dict[str, object]] = {}
    clouds = {}
    variants = {'a_kinect': None, 'b_ours_ground_truth_scale': gt_scale,
                'c_ours_odometry_scale': odom_scale}
    for name, scale in variants.items():
        if scale is None:
            rgbs, depths, K = read_frames(bag, '/camera/depth_gt')
        else:
            ckpt = with_scale(weights, scale, scratch / f'{name}.pth')
            slam_bag = scratch / f'{name}_slam'
            status = cli(['bag-eval', str(bag), '--image-topic', '/camera/image_raw',
                          '--depth-topic', '/camera/depth_gt', '--weights', str(ckpt),
                          '--output', str(scratch / f'{name}_eval'), '--record-out',
                          str(slam_bag)])
            if status:
                return status
            rgbs, depths, K = read_frames(slam_bag, '/camera/depth/image')
        t0 = time.perf_counter()
        poses, points, colors, failures = run_open3d(rgbs, depths, K)
        runs[name] = dict(trajectory_errors(poses, truth), odometry_failures=failures,
                          fused_points=int(len(points)), frames=len(rgbs),
                          open3d_seconds=round(time.perf_counter() - t0, 1),
                          depth_scale=scale)
        clouds[name] = (points, colors, poses)
        print(name, runs[name], flush=True)

    png = args.output.with_name(args.output.stem + '_topdown.png')
    panels = [top_down(*clouds['a_kinect'], '(a) Kinect depth'),
              top_down(*clouds['c_ours_odometry_scale'],
                       '(c) ours, odometry scale')]
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(np.hstack(panels), cv2.COLOR_RGB2BGR))
    import open3d as o3d
    write_json({
        'benchmark': 'slam_open3d_7scenes_redkitchen', 'machine': machine_info(),
        'open3d': o3d.__version__,
        'settings': {'weights': str(args.weights) if args.weights else
                     f'trained here: baseline, {args.steps} self-supervised steps on the '
                     f'sequence at {SIZE[0]}x{SIZE[1]} (overfit_7scenes recipe)',
                     'odometry_pairs_m': list(ODOMETRY_RANGE), 'tsdf_voxel_m': TSDF_VOXEL_M,
                     'tsdf_cube_m': TSDF_CUBE_M,
                     'depth_trunc_m': 4.0, 'open3d_odometry': 'hybrid term, frame to frame, '
                     'chained; a failed step counts as no motion'},
        'train_seconds': round(train_s, 1), 'scales': found,
        'odometry_vs_ground_truth_scale': odom_scale / gt_scale - 1,
        'runs': runs, 'topdown_png': png.name,
    }, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
