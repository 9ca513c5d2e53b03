"""
Best-effort delivery of full-size camera frames between two processes, per Fast DDS setting.

A sender process publishes N sensor_msgs/Image (640x480 rgb8 = 921,600 bytes of pixels) best
effort at a fixed rate once a receiver has matched; a receiver process counts what arrives.
Settings: Fast DDS defaults (the baseline), ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` on both
sides, and this package's large shared-memory profile (``node/dds.py``) on both sides and on
the sender only. 320x240 with defaults is the small-frame control.

Usage: python -m benchmarks.bench_node_dds [--frames 150] [--rate 30]
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time

from benchmarks.common import add_output_option, machine_info, resolve_output, write_json

ROOT = Path(__file__).resolve().parents[1]


def sender(frames: int, rate: float, width: int, height: int) -> None:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from treeaspp_depth_ros.conversions.image import to_byte_array
    from treeaspp_depth_ros.node.qos import input_qos
    import numpy as np
    rclpy.init()
    node = Node('dds_sender')
    publisher = node.create_publisher(Image, 'image', input_qos())
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3)
    msg.data = to_byte_array(np.zeros((height, width, 3), np.uint8))
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    for _ in range(frames):
        publisher.publish(msg)
        time.sleep(1.0 / rate)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.try_shutdown()


def receiver(seconds: float) -> None:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from treeaspp_depth_ros.node.qos import input_qos
    rclpy.init()
    node = Node('dds_receiver')
    count = [0]
    node.create_subscription(Image, 'image', lambda _: count.__setitem__(0, count[0] + 1),
                             input_qos())
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps({'received': count[0]}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def trial(name: str, sender_env: dict, receiver_env: dict, frames: int, rate: float,
          size, domain: int) -> dict:
    base = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                PYTHONPATH=str(ROOT))
    for key in ('FASTDDS_BUILTIN_TRANSPORTS', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        base.pop(key, None)
    me = [sys.executable, '-m', 'benchmarks.bench_node_dds']
    recv = subprocess.Popen(me + ['--role', 'receiver', '--seconds', str(frames / rate + 8)],
                            env=dict(base, **receiver_env), stdout=subprocess.PIPE, text=True)
    send = subprocess.Popen(me + ['--role', 'sender', '--frames', str(frames), '--rate',
                                  str(rate), '--size', f'{size[0]}x{size[1]}'],
                            env=dict(base, **sender_env))
    send.wait()
    out, _ = recv.communicate()
    received = json.loads(out.strip().splitlines()[-1])['received']
    return {'setting': name, 'size': f'{size[0]}x{size[1]}', 'sent': frames,
            'received': received}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--role', choices=('bench', 'sender', 'receiver'), default='bench')
    parser.add_argument('--frames', type=int, default=150)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--seconds', type=float, default=10.0)
    add_output_option(parser, 'node_dds.json')
    args = parser.parse_args()
    args.output = resolve_output(args.output, 'node_dds.json')
    size = tuple(int(v) for v in args.size.split('x'))
    if args.role == 'sender':
        sender(args.frames, args.rate, *size)
        return 0
    if args.role == 'receiver':
        receiver(args.seconds)
        return 0
    from treeaspp_depth_ros.node import dds
    profile = {'FASTDDS_DEFAULT_PROFILES_FILE': str(dds.write_profile())}
    large = {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}
    domain = 1 + (os.getpid() + 29) % 100
    runs = [
        ('defaults (control: 320x240)', {}, {}, (320, 240)),
        ('defaults', {}, {}, size),
        ('LARGE_DATA both sides', large, large, size),
        ('large shared-memory profile both sides', profile, profile, size),
        ('large shared-memory profile on the sender only', profile, {}, size),
    ]
    results = [trial(name, s, r, args.frames, args.rate, run_size, domain)
               for name, s, r, run_size in runs]
    write_json({'benchmark': 'dds_best_effort_delivery', 'machine': machine_info(),
                'rate_hz': args.rate, 'results': results}, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
