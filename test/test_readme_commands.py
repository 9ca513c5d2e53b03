"""
The node command lines that the README, docs/node.md and the launch file show, run as written.

Each line is read from its document (so a broken edit there fails here), its placeholder
weights (`/path/model.pth`, `.pt`, `.onnx`) replaced by a real file, and started as a real node
process in its own ROS domain. It must come up with the weights the line asks for (its log's
"loaded ... from PATH" and its `weights` parameter over DDS) and subscribe where the line
remaps its inputs to.

How each kind of line is started: ``ros2 run treeaspp_depth_ros EXE`` and
``scripts/venv.sh EXE`` run the console script EXE with the line's arguments from the
repository root (what `ros2 run` finds in lib/, and what venv.sh execs after `cd` to the
root; venv.sh itself would reinstall requirements when they change); ``ros2 launch ...
depth.launch.py ARG:=VALUE`` goes through ``describe_depth_node``, which is all the launch file
hands to launch_ros (test_launch.py runs the launch file itself from a colcon install).
"""

import os
from pathlib import Path
import re
import shlex
import sys
from typing import Dict, List, NamedTuple, Optional

import pytest
from treeaspp_depth_ros.node.description import describe_depth_node, LAUNCH_ARGUMENTS
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
from treeaspp_depth_ros.weights import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ('README.md', 'docs/node.md', 'launch/depth.launch.py')
PACKAGE = 'treeaspp_depth_ros'
COMMAND = re.compile(
    r'(ros2 run treeaspp_depth_ros|scripts/venv\.sh) (depth_node|depth_lifecycle_node) '
    r'|ros2 launch treeaspp_depth_ros depth\.launch\.py')
#: placeholder in the documents -> fixture name of the real file used for it
PLACEHOLDERS = {'/path/model.pth': 'checkpoint', '/path/model.pt': 'checkpoint',
                '/path/model.onnx': 'onnx'}
#: one domain per line, above the 1..101 the other DDS tests draw from (a shared domain
#: would show another test's /depth_node here); ROS domains go up to 232
DOMAIN = 120 + os.getpid() % 90


class Line(NamedTuple):
    """One documented command line and where it is written."""

    where: str
    text: str


def _logical_lines(text: str, markdown: bool) -> List[str]:
    """
    Lines with their backslash continuations joined, of code only.

    Markdown: inside code fences; Python: the docstring's indented example block.
    """
    lines, current, in_code = [], '', False
    for raw in text.splitlines():
        if markdown and raw.lstrip().startswith('```'):
            in_code = not in_code
            continue
        if not (in_code if markdown else raw.startswith('    ') or current):
            continue
        stripped = raw.strip()
        if stripped.endswith('\\'):
            current += stripped[:-1] + ' '
            continue
        lines.append(current + stripped)
        current = ''
    return lines


def documented_lines() -> List[Line]:
    """Every distinct node command line of the documents, first place it appears."""
    found: Dict[str, str] = {}
    for name in SOURCES:
        for text in _logical_lines((ROOT / name).read_text(), name.endswith('.md')):
            match = COMMAND.search(text)
            if match:  # the same command with another comment is the same line
                found.setdefault(shlex.join(shlex.split(text[match.start():], comments=True)),
                                 name)
    return [Line(where, text) for text, where in found.items()]


LINES = documented_lines()


def test_the_documents_show_node_command_lines():
    """The extraction itself: a reworded README must not leave this file testing nothing."""
    texts = [line.text for line in LINES]
    assert any('--params-file config/depth_node.yaml' in t and
               t.index('weights:=') < t.index('--params-file') for t in texts), texts
    assert any(t.startswith('ros2 launch') for t in texts), texts
    assert any('depth_lifecycle_node' in t or 'lifecycle:=true' in t for t in texts), texts
    assert len(texts) >= 6, texts


class Plan(NamedTuple):
    """How to start a line and what it must come up with."""

    command: Optional[List[str]]  # None: a launch line, started from `description`
    description: object
    lifecycle: bool
    node: str  # fully qualified node name
    weights: str  # the `weights` parameter value
    image: str
    camera_info: str


def _ros_value(args: List[str], flag: str, name: str) -> Optional[str]:
    """Return the last ``flag name:=VALUE`` of ``--ros-args`` (rcl: the last one wins)."""
    values = [args[i + 1].split(':=', 1)[1] for i in range(len(args) - 1)
              if args[i] == flag and args[i + 1].startswith(name + ':=')]
    return values[-1] if values else None


def _resolve(topic: str, namespace: str) -> str:
    return topic if topic.startswith('/') else f'{namespace.rstrip("/")}/{topic}'


def plan(text: str, files: Dict[str, Path]) -> Plan:
    """Turn a documented line into what to start and what to expect."""
    for placeholder, fixture in PLACEHOLDERS.items():
        text = re.sub(re.escape(placeholder) + r'\b', str(files[fixture]), text)
    tokens = [os.path.expandvars(t) for t in shlex.split(text.replace('$PWD', str(ROOT)),
                                                         comments=True)]
    unknown = [t for t in tokens if '/path/' in t or '...' in t or '<' in t]
    assert not unknown, f'placeholder without a file for this test: {unknown} in {text!r}'
    if tokens[:2] == ['ros2', 'launch']:
        arguments = dict(t.split(':=', 1) for t in tokens[4:])
        assert set(arguments) <= set(LAUNCH_ARGUMENTS), arguments
        description = describe_depth_node(**arguments)
        namespace = description.namespace or '/'
        return Plan(None, description, description.lifecycle,
                    _resolve(description.name, namespace), arguments.get('weights', ''),
                    _resolve(arguments.get('image_topic', 'image'), namespace),
                    _resolve(arguments.get('camera_info_topic', 'camera_info'), namespace))
    executable, args = (tokens[3], tokens[4:]) if tokens[0] == 'ros2' else (tokens[1], tokens[2:])
    bin_dir = Path(sys.executable).parent
    return Plan([str(bin_dir / executable)] + args, None, executable == 'depth_lifecycle_node',
                '/depth_node', _ros_value(args, '-p', 'weights') or '',
                _resolve(_ros_value(args, '-r', 'image') or 'image', '/'),
                _resolve(_ros_value(args, '-r', 'camera_info') or 'camera_info', '/'))


@pytest.fixture(scope='module')
def files(baseline_weights, tmp_path_factory) -> Dict[str, Path]:
    """Make the real files that stand in for the documents' placeholders."""
    from treeaspp_depth_ros.onnx_export import export_onnx
    folder = tmp_path_factory.mktemp('readme_weights')
    return {'checkpoint': baseline_weights,
            'onnx': export_onnx(baseline_weights, folder / 'model.onnx', (128, 96))}


@pytest.mark.parametrize('line', LINES, ids=[f'{line.where}:{line.text}' for line in LINES])
def test_documented_node_command_line_starts_with_the_intended_weights(line, files, tmp_path):
    planned = plan(line.text, files)
    domain = DOMAIN + LINES.index(line)
    env = isolated_env(domain, extra={'TREEASPP_DEPTH_CACHE': str(tmp_path / 'cache'),
                                      'ROS_LOG_DIR': str(tmp_path / 'ros_log')})
    env['PATH'] = os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', '')])
    log = tmp_path / 'node.log'
    if planned.command is None:
        process = NodeProcess.depth_node(planned.description, env, log)
    else:
        process = NodeProcess(planned.command, env, log, cwd=ROOT)
    weights = str(Path(planned.weights)) if planned.weights else str(DEFAULT_WEIGHTS)
    loaded = re.compile(r'loaded \w+ network from ' + re.escape(weights) + ' on ')
    try:
        with Probe(domain, 'readme_probe') as probe:
            if planned.lifecycle:
                waiting = probe.wait_for(lambda: not process.alive() or
                                         'unconfigured, waiting for configure' in
                                         process.log_text(), 120)
                assert waiting and process.alive(), process.log_tail(30)
                assert not loaded.search(process.log_text())  # nothing before configure
                assert probe.lifecycle_transition(planned.node, 'configure'), \
                    process.log_tail(30)
            graph = probe.node  # alone in this domain with the node: its remaps, over DDS
            up = probe.wait_for(lambda: not process.alive() or (
                loaded.search(process.log_text())
                and graph.count_subscribers(planned.image) == 1
                and graph.count_subscribers(planned.camera_info) == 1), 180)
            assert up and process.alive(), f'{line.text}\n{process.log_tail(30)}'
            # and it says so: a user reads where it listens from its log
            assert f'listening on {planned.image} and {planned.camera_info}' in \
                process.log_text(), process.log_tail(30)
            assert probe.get_parameters(planned.node, ['weights']) == \
                {'weights': planned.weights}
    finally:
        process.stop()
