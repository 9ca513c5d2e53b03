"""
What ``depth.launch.py`` starts, as plain Python: name, namespace, parameters, remappings.

launch_ros is not always installed (it is not pip-installable), yet the launch file's choices
must be testable and reusable (the demo starts the same node without launch). So the launch
file only turns :func:`describe_depth_node` into a ``launch_ros.actions.Node``, and the tests
and the demo turn the same description into ``--ros-args`` for a real process.
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from . import dds

PACKAGE = 'treeaspp_depth_ros'
MODULE = 'treeaspp_depth_ros.node.depth_node'

#: launch argument -> (default, description); the launch file declares exactly these
LAUNCH_ARGUMENTS: Dict[str, Tuple[str, str]] = {
    'namespace': ('', 'Namespace of the node and its relative topics (one per camera).'),
    'node_name': ('depth_node', 'Node name.'),
    'image_topic': ('image', 'Camera image topic (remaps `image`; with use_compressed the '
                    'node subscribes to <image_topic>/compressed).'),
    'camera_info_topic': ('camera_info', 'Camera info topic (remaps `camera_info`).'),
    'weights': ('', 'Checkpoint file; empty keeps the params file value (the shipped file '
                'sets none: the shipped default weights).'),
    'device': ('', 'auto, cpu, cuda or cuda:N; empty keeps the params file value.'),
    'backend': ('', 'Inference backend: auto, torch, onnxruntime, openvino or tensorrt; empty '
                'keeps the params file value.'),
    'use_compressed': ('', 'true: subscribe to <image_topic>/compressed; empty keeps the '
                       'params file value.'),
    'params_file': ('', 'Parameters YAML; empty uses the package config/depth_node.yaml.'),
    'lifecycle': ('false', 'true: start the managed (lifecycle) node, left unconfigured for '
                  'a lifecycle manager.'),
    'large_data': ('true', 'true: give the node the large shared-memory Fast DDS profile '
                   '(full-size images and clouds best effort on one host).'),
}


@dataclass
class NodeDescription:
    """A depth node to start: everything launch_ros.actions.Node needs, and --ros-args."""

    name: str = 'depth_node'
    namespace: str = ''
    executable: str = 'depth_node'
    package: str = PACKAGE
    lifecycle: bool = False
    parameters: List[Union[str, Dict[str, Any]]] = field(default_factory=list)
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)

    def ros_arguments(self) -> List[str]:
        """``--ros-args`` that give a process this name, namespace, parameters, remappings."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if self.namespace:
            args += ['-r', f'__ns:={self.namespace}']
        for entry in self.parameters:
            if isinstance(entry, dict):
                for key, value in entry.items():
                    args += ['-p', f'{key}:={_yaml_scalar(value)}']
            else:
                args += ['--params-file', str(entry)]
        for source, target in self.remappings:
            args += ['-r', f'{source}:={target}']
        return args

    def command(self, python: str = sys.executable) -> List[str]:
        """Return the command line for a test or the demo (module form, no console script)."""
        flag = ['--lifecycle'] if self.lifecycle else []
        return [python, '-m', MODULE] + flag + self.ros_arguments()

    def process_env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(self.env)
        return env


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        # quote strings YAML would read as something else ('', 'true', '1.0', '~')
        return value if value and yaml.safe_load(value) == value else "'" + value + "'"
    return str(value)


def _parse_bool(name: str, text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ('true', '1', 'yes', 'on'):
        return True
    if lowered in ('false', '0', 'no', 'off'):
        return False
    raise ValueError(f'launch argument {name} must be true or false, got {text!r}')


def default_params_file() -> Path:
    """config/depth_node.yaml of a source checkout, else the installed share/ copy."""
    source = Path(__file__).resolve().parents[2] / 'config' / 'depth_node.yaml'
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE)) / 'config' / 'depth_node.yaml'
    except (ImportError, LookupError, ValueError, OSError):
        return source


def _normalise_namespace(namespace: str) -> str:
    namespace = namespace.strip().strip('/')
    return '/' + namespace if namespace else ''


def describe_depth_node(namespace: str = '', node_name: str = 'depth_node',
                        image_topic: str = 'image', camera_info_topic: str = 'camera_info',
                        weights: str = '', device: str = '', backend: str = '',
                        use_compressed: str = '',
                        params_file: str = '', lifecycle: Union[bool, str] = False,
                        large_data: Union[bool, str] = True,
                        parameters: Optional[Dict[str, Any]] = None) -> NodeDescription:
    """
    Describe a depth node; arguments are the launch arguments (strings accepted).

    ``parameters`` are extra parameter values applied after the params file and the
    weights/device/backend/use_compressed arguments.
    """
    given = {'weights': weights, 'device': device, 'backend': backend}
    overrides: Dict[str, Any] = {name: str(value) for name, value in given.items() if value}
    if use_compressed != '' and use_compressed is not None:
        overrides['use_compressed'] = _parse_bool('use_compressed', use_compressed) \
            if isinstance(use_compressed, str) else bool(use_compressed)
    overrides.update(parameters or {})
    lifecycle = _parse_bool('lifecycle', lifecycle) if isinstance(lifecycle, str) \
        else bool(lifecycle)
    large_data = _parse_bool('large_data', large_data) if isinstance(large_data, str) \
        else bool(large_data)
    remappings = []
    if image_topic and image_topic != 'image':
        remappings.append(('image', image_topic))
    if camera_info_topic and camera_info_topic != 'camera_info':
        remappings.append(('camera_info', camera_info_topic))
    if large_data:  # only what differs from this environment (users' Fast DDS settings win)
        env = {k: v for k, v in dds.large_data_env().items() if os.environ.get(k) != v}
    else:
        env = {dds.OPT_OUT: '0'}
    entries: List[Union[str, Dict[str, Any]]] = [str(params_file or default_params_file())]
    if overrides:
        entries.append(overrides)
    return NodeDescription(
        name=node_name or 'depth_node', namespace=_normalise_namespace(namespace),
        executable='depth_lifecycle_node' if lifecycle else 'depth_node', lifecycle=lifecycle,
        parameters=entries, remappings=remappings, env=env)
