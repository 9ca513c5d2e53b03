"""
`treeaspp-depth make-bag`: turn an RGB-D dataset folder into a rosbag2 (sqlite3 or mcap).

The folder is read by its layout (:mod:`treeaspp_depth_ros.data.layouts`) and written by
:func:`.dataset_writer.write_dataset_bag`, which says what the bag holds.
"""

import argparse
from pathlib import Path

from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.bag.dataset_writer import (DEFAULT_FRAME_ID, DEFAULT_PREFIX,
                                                   write_dataset_bag)
from treeaspp_depth_ros.conversions.stamps import NS_PER_S, seconds_to_ns
from treeaspp_depth_ros.data.layouts import describe_frames, FORMATS, load_dataset
from treeaspp_depth_ros.data.records import DEFAULT_START_NS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('src', metavar='SRC', type=Path,
                        help='dataset folder (image folder, NYU test folder, TUM sequence or '
                             '7-Scenes sequence)')
    parser.add_argument('--format', required=True, choices=FORMATS,
                        help='dataset layout of SRC')
    parser.add_argument('--output', '-o', required=True, type=Path, metavar='BAG',
                        help='rosbag2 directory to create')
    parser.add_argument('--storage', choices=sorted(bagio.STORAGES), default='sqlite3',
                        help='rosbag2 storage plugin (default: sqlite3)')
    parser.add_argument('--depth-encoding', choices=('16UC1', '32FC1'), default='16UC1',
                        help='ground-truth depth encoding: 16UC1 millimetres (0 = invalid) or '
                             '32FC1 metres (NaN = invalid); default 16UC1')
    parser.add_argument('--intrinsics', metavar='FX,FY,CX,CY|FILE',
                        help='camera intrinsics (required for --format folder unless SRC has '
                             'intrinsics.txt; defaults to the published ones otherwise)')
    parser.add_argument('--depth-dir', type=Path,
                        help='folder format: ground-truth depth with the same file stems '
                             '(.png scaled by --depth-unit, or .npy metres)')
    parser.add_argument('--depth-unit', type=float,
                        help='metres per PNG depth unit (default: 0.001; TUM 1/5000; NYU '
                             'color/+depth/ layout 1/5000)')
    parser.add_argument('--fps', type=float, default=30.0,
                        help='frame rate for stamps of datasets without timestamps (default 30)')
    parser.add_argument('--start-time', type=float, default=DEFAULT_START_NS / NS_PER_S,
                        help='stamp of the first frame in seconds for datasets without '
                             'timestamps (default %(default).0f)')
    parser.add_argument('--max-dt', type=float, default=0.02,
                        help='TUM: largest rgb/depth stamp difference to associate (s)')
    parser.add_argument('--frame-id', default=DEFAULT_FRAME_ID,
                        help='header frame_id of image, camera_info and depth')
    parser.add_argument('--topic-prefix', default=DEFAULT_PREFIX,
                        help='topics are PREFIX/image_raw, PREFIX/camera_info, PREFIX/depth_gt '
                             'and PREFIX/pose_gt (default /camera)')
    parser.add_argument('--qos', choices=('reliable', 'best-effort'), default='reliable',
                        help='offered QoS recorded for the sensor topics (ros2 bag play '
                             're-offers it)')
    parser.add_argument('--max-frames', type=int, help='stop after this many frames')
    parser.add_argument('--bag-version', type=int, choices=(8, 9), default=8,
                        help='rosbag2 metadata version (8: Humble with mcap plugin and newer)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing BAG')


def run(args: argparse.Namespace) -> int:
    dataset = load_dataset(
        args.format, args.src, intrinsics=args.intrinsics, depth_dir=args.depth_dir,
        depth_unit=args.depth_unit, fps=args.fps,
        start_ns=seconds_to_ns(args.start_time), max_difference=args.max_dt)
    print(f'reading {describe_frames(dataset, args.max_frames)}')
    summary = write_dataset_bag(
        dataset, args.output, storage=args.storage, depth_encoding=args.depth_encoding,
        frame_id=args.frame_id, topic_prefix=args.topic_prefix,
        reliable=args.qos == 'reliable', max_frames=args.max_frames,
        version=args.bag_version, overwrite=args.overwrite)
    topics = ', '.join(f'{t} ({n})' for t, n in summary['topics'].items())
    print(f'wrote {summary["bag"]} ({summary["storage"]}): {summary["frames"]} frames '
          f'{summary["width"]}x{summary["height"]} in {summary["seconds"]:.1f} s; '
          f'topics: {topics}')
    return 0
