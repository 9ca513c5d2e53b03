"""
`treeaspp-depth`: one command-line entry point with a sub-command per job.

Sub-command modules are imported lazily so that `treeaspp-depth info` does not pay for rclpy
or rosbags, and a machine without ROS can still convert checkpoints and predict.
Each module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

import argparse
import importlib
import sys
from typing import List, Optional

from treeaspp_depth_ros.data import DataError

#: sub-command name -> (module, one-line help)
COMMANDS = {
    'info': ('treeaspp_depth_ros.tools.info',
             'parameters, size, GFLOPs and CPU latency per variant'),
    'convert-checkpoint': ('treeaspp_depth_ros.tools.convert_checkpoint',
                           'import SC-SfMLearner / sc_depth_pl weights'),
    'predict': ('treeaspp_depth_ros.tools.predict', 'depth for image files'),
    'demo': ('treeaspp_depth_ros.demo.run_demo', 'camera -> node -> recorder demo with a report'),
    'make-bag': ('treeaspp_depth_ros.bag.make_bag', 'build a rosbag2 from a dataset folder'),
    'bag-eval': ('treeaspp_depth_ros.bag.bag_eval', 'evaluate depth on a rosbag2 recording'),
    'calibrate-scale': ('treeaspp_depth_ros.bag.calibrate', 'store a metric depth scale'),
    'export': ('treeaspp_depth_ros.tools.export',
               'the depth network as ONNX (fp32 or INT8) for the onnxruntime / openvino / '
               'tensorrt backends'),
}


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 1."""


def build_parser(selected: Optional[str] = None) -> argparse.ArgumentParser:
    """Parser with the arguments of the `selected` sub-command loaded."""
    parser = argparse.ArgumentParser(
        prog='treeaspp-depth',
        description='Self-supervised monocular indoor depth (SC-SfMLearner + Tree-shaped ASPP).')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        if name == selected:
            importlib.import_module(module_name).add_arguments(command_parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the sub-command being run is imported (the first word that names one).
    selected = next((word for word in argv if word in COMMANDS), None)
    args = build_parser(selected).parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except (CommandError, DataError) as error:
        print(f'treeaspp-depth {args.command}: error: {error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
