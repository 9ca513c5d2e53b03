"""
The depth node's process: DDS profile, rclpy start, spin until SIGINT/SIGTERM, orderly exit.

The signal handlers only set a flag that the spin loop checks every 0.1 s. Shutting the
context down from rclpy's own handlers races with the executor building its wait set (seen
here as an RCLError exit or a hang about one run in five).
"""

import os
import signal
import sys
import threading
from typing import List, Optional, Tuple

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from . import dds

LIFECYCLE_FLAG = '--lifecycle'


class StartupError(RuntimeError):
    """The node cannot start (bad parameters, unusable weights); the message says why."""


def run(node_class: type, args: Optional[List[str]], logger_name: str,
        fast_exit: bool = False) -> int:
    """
    Spin one ``node_class()`` until a signal, then release everything in order.

    Returns the exit status: 1 with the reason logged when the node raises
    :class:`StartupError`, else 0. ``fast_exit`` ends the process right after ROS is released.
    """
    profile = dds.apply_to_this_process()
    argv = command_line_parameters_last(list(sys.argv if args is None else args))
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    context = rclpy.get_default_context()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logger = rclpy.logging.get_logger(logger_name)
    if profile:
        logger.info(f'Fast DDS: large shared-memory profile {profile} (set '
                    f'{dds.OPT_OUT}=0 to keep Fast DDS defaults)')
    node = None
    executor = None
    status = 0
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.1)
    except StartupError as error:
        logger.fatal(str(error))
        status = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        rclpy.try_shutdown(context=context)
        context.destroy()  # leaves the DDS graph now, so peers see the node go at once
    if fast_exit:
        # Everything ROS has been released above; skip the interpreter's teardown of torch
        # and friends, which alone takes 1-2 s here and would break the 2 s shutdown budget.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


#: ``--ros-args`` options that set parameters, with their one value
_PARAMETER_FILE = ('--params-file',)
_PARAMETER_VALUE = ('-p', '--param')


def command_line_parameters_last(argv: List[str]) -> List[str]:
    """
    Move every ``-p name:=value`` after every ``--params-file`` (each kept in its order).

    rcl applies the two in the order given, so ``-p weights:=X --params-file depth_node.yaml``
    silently took the file's value. A value typed on the command line is meant to win, as a
    launch argument wins over the launch file's params file; nothing else is reordered.
    """
    out: List[str] = []
    files: List[str] = []
    values: List[str] = []
    in_ros_args = False
    i = 0

    def flush() -> None:
        out.extend(files + values)
        files.clear()
        values.clear()

    while i < len(argv):
        token = argv[i]
        if token == '--ros-args':
            flush()
            in_ros_args = True
            out.append(token)
        elif in_ros_args and token == '--':
            flush()
            in_ros_args = False
            out.append(token)
        elif in_ros_args and token in _PARAMETER_FILE + _PARAMETER_VALUE and i + 1 < len(argv):
            (files if token in _PARAMETER_FILE else values).extend(argv[i:i + 2])
            i += 1
        else:
            out.append(token)
        i += 1
    flush()
    return out


def take_lifecycle_flag(args: Optional[List[str]]) -> Tuple[bool, List[str]]:
    """Return whether ``--lifecycle`` is given before ``--ros-args``, and argv without it."""
    argv = list(sys.argv if args is None else args)
    ours = argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv
    lifecycle = LIFECYCLE_FLAG in ours
    if lifecycle:
        argv.remove(LIFECYCLE_FLAG)
    return lifecycle, argv
