"""
What depth.launch.py starts: resolved names, topics, QoS and parameter values of real processes.

launch_ros is not pip-installable, so the launch file delegates every decision to
``describe_depth_node``; these tests start that description as a real process and check the
ROS graph. The launch file itself runs as ``ros2 launch`` runs it (launch_runner.py: the
LaunchService in the main thread of its own process, from a colcon install), with launch_ros
where it is installed, else the vendored copy in ../shared/vendor/ros2-launch.
"""

import os
from pathlib import Path
import re
import signal
import subprocess
import sys
from typing import List, Optional, Tuple
import xml.etree.ElementTree as ElementTree

import launch_runner
import pytest
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import Image
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns as _stamp
from treeaspp_depth_ros.node import dds, params
from treeaspp_depth_ros.node.description import (
    default_params_file,
    describe_depth_node,
    LAUNCH_ARGUMENTS,
    PACKAGE,
)
from treeaspp_depth_ros.node.qos import input_qos
from treeaspp_depth_ros.node_launcher import isolated_env, NodeProcess, Probe
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = 1 + (os.getpid() + 61) % 100
NS = f'launch_test_{os.getpid()}'
CAMERA = (128, 96)  # the camera's frame size (width, height)


@pytest.fixture(scope='module')
def checkpoint(baseline_weights) -> Path:
    return baseline_weights


@pytest.fixture(scope='module')
def probe():
    with Probe(DOMAIN, 'launch_test_probe') as probe:
        yield probe


def test_params_file_documents_every_parameter_with_its_default():
    path = ROOT / 'config' / 'depth_node.yaml'
    assert default_params_file() == path
    text = path.read_text()
    values = yaml.safe_load(text)['/**']['ros__parameters']
    # weights is a commented entry: the file must never replace a -p or launch weights:=
    assert "    # weights: ''" in text.splitlines()
    assert values == {k: v for k, v in params.defaults().items() if k != 'weights'}
    lines = [line.strip() for line in text.splitlines()]
    for name in values:  # a comment above each parameter or its group (fx, fy, cx, cy)
        index = lines.index(next(line for line in lines if line.startswith(f'{name}:'))) - 1
        while lines[index].split(':')[0] in values:
            index -= 1
        assert lines[index].startswith('#'), f'{name} is not documented'
    assert params.validate(dict(values, weights='x.pt')) == []
    # the one input-size rule (sizes.check_input_size) holds for the node too
    assert params.validate(dict(values, input_width=128, input_height=96)) == []
    assert '>= 64' in ' '.join(params.validate(dict(values, input_width=32, input_height=64)))


def test_description_turns_launch_arguments_into_ros_args():
    description = describe_depth_node(namespace='front/', node_name='depth_front',
                                      image_topic='/cam/image_raw', weights='/w/model.pt',
                                      device='cpu', backend='openvino', use_compressed='true',
                                      lifecycle='true',
                                      parameters={'variant': '', 'max_depth': 8.0})
    args = description.ros_arguments()
    assert args[:5] == ['--ros-args', '-r', '__node:=depth_front', '-r', '__ns:=/front']
    assert ['--params-file', str(default_params_file())] == args[5:7]
    for item in ('weights:=/w/model.pt', 'device:=cpu', 'backend:=openvino',
                 'use_compressed:=true', "variant:=''", 'max_depth:=8.0', 'image:=/cam/image_raw'):
        assert item in args, item
    assert description.lifecycle and description.executable == 'depth_lifecycle_node'
    assert '--lifecycle' in description.command()
    assert set(LAUNCH_ARGUMENTS) >= {'namespace', 'image_topic', 'camera_info_topic',
                                     'weights', 'device', 'backend', 'params_file', 'lifecycle'}
    assert 'backend' not in str(describe_depth_node().parameters)  # empty: params file decides
    with pytest.raises(ValueError, match='lifecycle'):
        describe_depth_node(lifecycle='maybe')


def test_large_data_profile_and_user_settings(tmp_path):
    path = dds.write_profile(tmp_path / 'profile.xml')
    root = ElementTree.parse(path).getroot()
    sizes = [int(e.text) for e in root.iter('{http://www.eprosima.com}segment_size')]
    assert sizes == [dds.SEGMENT_BYTES] and dds.SEGMENT_BYTES > 10 * 2**20
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' in dds.large_data_env({})
    kept = {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'}
    assert dds.large_data_env(kept) == kept  # the user's own Fast DDS choice wins
    assert dds.large_data_env({dds.OPT_OUT: '0'}) == {dds.OPT_OUT: '0'}


PROBE_SEGMENTS = """
import glob, os, sys, time
from treeaspp_depth_ros.node_launcher import Probe
before = set(glob.glob('/dev/shm/fastdds_*'))
probe = Probe(int(sys.argv[1]), 'segment_probe')
time.sleep(0.5)
new = set(glob.glob('/dev/shm/fastdds_*')) - before
print(max(os.path.getsize(p) for p in new))
os._exit(0)
"""


@pytest.mark.skipif(not Path('/dev/shm').is_dir(), reason='Fast DDS shared memory lives in '
                    '/dev/shm on Linux only')
def test_an_in_process_probe_gets_the_large_shared_memory_segment(tmp_path):
    """
    Fast DDS reads its profile once per process, at the first participant.

    A probe made first in a process (as the test suite's first DDS test does) used to get the
    default 512 KB segment, and every participant after it in that process too: bag-eval's
    live player then sent 640x480 frames over fragmented UDP and lost them.
    """
    # as a process that the user set no Fast DDS choice for
    env = {k: v for k, v in os.environ.items() if k not in (*dds.USER_SETTINGS, dds.OPT_OUT)}
    env.update(XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(Path(__file__).parents[1]))
    largest = subprocess.run([sys.executable, '-c', PROBE_SEGMENTS, str(DOMAIN)],
                             capture_output=True, text=True, env=env, timeout=120,
                             check=True).stdout.split()[-1]
    assert int(largest) >= dds.SEGMENT_BYTES


def test_dds_profile_command_prints_the_export_line_for_a_camera_driver(tmp_path):
    """`eval "$(depth_dds_profile)"`: a console script, so no particular Python is needed."""
    script = Path(sys.executable).with_name('depth_dds_profile')
    assert script.is_file(), 'the package installs the depth_dds_profile console script'
    env = {k: v for k, v in os.environ.items() if k != 'TREEASPP_DEPTH_CACHE'}
    env['XDG_CACHE_HOME'] = str(tmp_path)
    line = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60,
                          check=True).stdout.strip()
    assert line == f'export FASTDDS_DEFAULT_PROFILES_FILE={tmp_path}/treeaspp_depth_ros/' \
        'fastdds_large_shm.xml'
    assert (tmp_path / 'treeaspp_depth_ros' / 'fastdds_large_shm.xml').read_text() == \
        dds.PROFILE_XML
    # the package's cache folder, as for the ONNX exports, wins over ~/.cache
    env['TREEASPP_DEPTH_CACHE'] = str(tmp_path / 'own')
    line = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60,
                          check=True).stdout.strip()
    assert line == f'export FASTDDS_DEFAULT_PROFILES_FILE={tmp_path}/own/fastdds_large_shm.xml'
    assert (tmp_path / 'own' / 'fastdds_large_shm.xml').is_file()
    # --help is help: it writes nothing and prints no export line
    helped = subprocess.run([str(script), '--help'], capture_output=True, text=True, env=env,
                            timeout=60)
    assert helped.returncode == 0 and 'usage: depth_dds_profile' in helped.stdout
    assert 'export ' not in helped.stdout and 'TREEASPP_DEPTH_CACHE' in helped.stdout


def _wait_graph(probe, predicate, timeout=60.0):
    return probe.wait_for(predicate, timeout, period=0.2)


def test_described_node_resolves_names_topics_qos_and_values(probe, checkpoint, tmp_path):
    custom = tmp_path / 'robot.yaml'
    values = yaml.safe_load(default_params_file().read_text())
    values['/**']['ros__parameters'].update(max_depth=7.5, device='cuda')
    custom.write_text(yaml.safe_dump(values))
    front = describe_depth_node(
        namespace=f'{NS}/front', node_name='depth_front', image_topic='/cam/color/image_raw',
        camera_info_topic='/cam/color/camera_info', weights=str(checkpoint), device='cpu',
        params_file=str(custom),
        parameters={'input_width': 64, 'input_height': 64,
                    'qos_overrides./cam/color/image_raw.subscription.reliability': 'reliable'})
    rear = describe_depth_node(namespace=f'{NS}/rear', weights=str(checkpoint), device='cpu',
                               use_compressed='true',
                               parameters={'input_width': 64, 'input_height': 64})
    processes = [NodeProcess.depth_node(d, isolated_env(DOMAIN), tmp_path / f'{d.name}.log')
                 for d in (front, rear)]
    node = probe.node
    try:
        ready = _wait_graph(probe, lambda: (f'/{NS}/front', 'depth_front') in [
            (ns, name) for name, ns in node.get_node_names_and_namespaces()]
            and node.count_publishers(f'/{NS}/rear/points') > 0
            and node.count_subscribers('/cam/color/image_raw') > 0)
        assert ready, [p.log_text() for p in processes]
        for topic in ('depth/image', 'depth/camera_info', 'points', 'depth/image_colored',
                      'diagnostics'):
            assert node.count_publishers(f'/{NS}/front/{topic}') == 1, topic
            info = node.get_publishers_info_by_topic(f'/{NS}/front/{topic}')[0]
            assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, topic
        image_sub = node.get_subscriptions_info_by_topic('/cam/color/image_raw')[0]
        assert image_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE  # overridden
        assert node.count_subscribers('/cam/color/camera_info') == 1
        assert _wait_graph(probe, lambda: node.count_subscribers(
            f'/{NS}/rear/image/compressed') == 1)
        compressed = node.get_subscriptions_info_by_topic(f'/{NS}/rear/image/compressed')[0]
        assert compressed.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # default
        got = probe.get_parameters(f'/{NS}/front/depth_front',
                                   ['device', 'weights', 'max_depth', 'input_width',
                                    'use_compressed'])
        # launch argument beats params file beats declared default
        assert got == {'device': 'cpu', 'weights': str(checkpoint), 'max_depth': 7.5,
                       'input_width': 64, 'use_compressed': False}
        assert probe.get_parameters(f'/{NS}/rear/depth_node', ['use_compressed']) == \
            {'use_compressed': True}
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(scope='module')
def launch_install(tmp_path_factory) -> Tuple[Optional[str], Path]:
    """
    (PYTHONPATH entry for launch/launch_ros or None, colcon install folder), built once.

    The launch file runs from a colcon install, as on a robot: the package found through
    the ament index, its console scripts in lib/<package>, the launch file in share/.
    """
    extra, reason = launch_runner.launch_pythonpath()
    if reason:
        pytest.skip(reason)
    install = launch_runner.colcon_install(ROOT, tmp_path_factory.mktemp('colcon_ws'), PACKAGE)
    return extra, install


@pytest.fixture(scope='module')
def small_params(tmp_path_factory) -> Path:
    """Write the shipped params file with a small network input (plumbing, not quality)."""
    values = yaml.safe_load(default_params_file().read_text())
    values['/**']['ros__parameters'].update(input_width=64, input_height=64)
    path = tmp_path_factory.mktemp('launch_params') / 'small.yaml'
    path.write_text(yaml.safe_dump(values))
    return path


class Launched:
    """``ros2 launch treeaspp_depth_ros depth.launch.py ARGS`` as its own process."""

    STARTED = re.compile(r'process started with pid \[(\d+)\]')

    def __init__(self, launch_install: Tuple[Optional[str], Path], log: Path,
                 arguments: List[str]) -> None:
        extra, self.install = launch_install
        env = isolated_env(DOMAIN)
        # the installed package, not this source tree (setup.sh puts the install first too)
        parts = [p for p in env['PYTHONPATH'].split(os.pathsep)
                 if p and Path(p).resolve() != ROOT]
        env['PYTHONPATH'] = os.pathsep.join(([extra] if extra else []) + parts)
        env['ROS_LOG_DIR'] = str(log.parent / 'ros_log')
        self.process = NodeProcess(
            launch_runner.command(self.install, PACKAGE, 'depth.launch.py', arguments), env,
            log)
        self.node_pid: Optional[int] = None

    def wait_node_started(self, probe: Probe, timeout: float = 120.0) -> int:
        """Return the pid of the node process that launch started (read from its log)."""
        found = probe.wait_for(lambda: not self.process.alive()
                               or self.STARTED.search(self.process.log_text()), timeout)
        assert found and self.process.alive(), self.process.log_tail(40)
        self.node_pid = int(found.group(1))
        return self.node_pid

    def wait_graph(self, probe: Probe, predicate, timeout: float = 180.0) -> None:
        ok = probe.wait_for(lambda: not self.process.alive() or predicate(), timeout, 0.2)
        assert ok and self.process.alive(), self.process.log_tail(40)

    def close(self) -> None:
        self.process.stop(signal.SIGINT, timeout=60.0)
        if self.node_pid is not None and _running_depth_node(self.node_pid):
            os.kill(self.node_pid, signal.SIGKILL)  # left behind by a failed test: not kept

    def __enter__(self) -> 'Launched':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _running_depth_node(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) depth node process."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
        cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
    except OSError:
        return False
    state = stat.rsplit(')', 1)[1].split()[0]
    return state not in ('Z', 'X') and 'depth_node' in cmdline


def _cmdline(pid: int) -> List[str]:
    return Path(f'/proc/{pid}/cmdline').read_bytes().decode().split('\0')


def _camera(namespace: str, log: Path, remaps: Tuple[str, ...] = ()) -> NodeProcess:
    """Start a camera driver process: small synthetic frames, looped, best effort."""
    remap_args = [a for r in remaps for a in ('-r', r)]
    return NodeProcess(
        [sys.executable, '-m', 'treeaspp_depth_ros.demo.camera', '--source', 'synthetic',
         '--frames', '4', '--width', str(CAMERA[0]), '--height', str(CAMERA[1]),
         '--rate', '2', '--loop', '--frame-id', 'launch_cam', '--wait-subscribers', '1',
         '--ros-args', '-r', f'__ns:={namespace}', *remap_args],
        isolated_env(DOMAIN), log)


def _depth_for_camera_images(launched: Launched, probe: Probe, depth, images,
                             timeout: float = 180.0) -> Image:
    """Wait for a depth image whose stamp is one of the camera's images; check its shape."""
    def found():
        stamps = {_stamp(m) for m in images.messages()}
        return next((m for m in depth.messages() if _stamp(m) in stamps), None)
    msg = probe.wait_for(lambda: not launched.process.alive() or found(), timeout, 0.2)
    assert msg is not None and msg is not True, (
        f'no depth for {len(images.messages())} camera images within {timeout} s\n'
        + launched.process.log_tail(40))
    assert (msg.encoding, msg.width, msg.height) == ('32FC1', *CAMERA)
    assert msg.header.frame_id == 'launch_cam'
    return msg


def test_launch_file_runs_the_installed_node(launch_install, probe, checkpoint, small_params,
                                             tmp_path):
    """Plain launch: the node from the install's lib/<pkg>, depth for a camera's images."""
    depth = probe.subscribe(Image, '/depth/image')
    images = probe.subscribe(Image, '/image', input_qos())
    with Launched(launch_install, tmp_path / 'launch.log',
                  [f'weights:={checkpoint}', 'device:=cpu',
                   f'params_file:={small_params}']) as launched:
        pid = launched.wait_node_started(probe)
        prefix = launched.install / PACKAGE
        # the executable that the ament index gives, and the installed Python package
        assert str(prefix / 'lib' / PACKAGE / 'depth_node') in _cmdline(pid)
        imported = next(line for line in launched.process.log_text().splitlines()
                        if line.startswith(launch_runner.IMPORTED_FROM))
        assert Path(imported[len(launch_runner.IMPORTED_FROM):]).is_relative_to(prefix)
        launched.wait_graph(probe, lambda: probe.node.count_publishers('/depth/image') == 1
                            and probe.node.count_subscribers('/image') >= 2)
        camera = _camera('/', tmp_path / 'camera.log')
        try:
            _depth_for_camera_images(launched, probe, depth, images)
        finally:
            camera.stop()
        assert probe.get_parameters('/depth_node', ['weights', 'device', 'input_width']) == \
            {'weights': str(checkpoint), 'device': 'cpu', 'input_width': 64}


def test_lifecycle_launch_publishes_only_after_configure_and_activate(
        launch_install, probe, checkpoint, small_params, tmp_path):
    """lifecycle:=true starts the managed node unconfigured; change_state brings it up."""
    ns = f'/{NS}/managed'
    name = f'{ns}/depth_node'
    depth = probe.subscribe(Image, f'{ns}/depth/image')
    images = probe.subscribe(Image, f'{ns}/image', input_qos())
    with Launched(launch_install, tmp_path / 'launch.log',
                  [f'namespace:={ns}', 'lifecycle:=true', f'weights:={checkpoint}',
                   'device:=cpu', f'params_file:={small_params}']) as launched:
        pid = launched.wait_node_started(probe)
        assert str(launched.install / PACKAGE / 'lib' / PACKAGE / 'depth_lifecycle_node') in \
            _cmdline(pid)
        launched.wait_graph(probe, lambda: f'{name}/change_state' in dict(
            probe.node.get_service_names_and_types()))
        assert probe.lifecycle_state(name) == 'unconfigured'
        camera = _camera(ns, tmp_path / 'camera.log')
        try:
            assert probe.wait_for(lambda: len(images.messages()) >= 2, 120), camera.log_text()
            assert probe.node.count_publishers(f'{ns}/depth/image') == 0  # nothing made yet
            assert probe.lifecycle_transition(name, 'configure')
            assert probe.lifecycle_state(name) == 'inactive'
            # inactive: subscribed, yet the camera's next frames give no depth
            launched.wait_graph(probe, lambda: probe.node.count_subscribers(f'{ns}/image') >= 2
                                and probe.node.count_publishers(f'{ns}/depth/image') == 1)
            seen = len(images.messages())
            assert probe.wait_for(lambda: len(images.messages()) >= seen + 3, 120)
            assert depth.messages() == []
            assert probe.lifecycle_transition(name, 'activate')
            assert probe.lifecycle_state(name) == 'active'
            _depth_for_camera_images(launched, probe, depth, images)
        finally:
            camera.stop()


def test_namespace_name_and_topic_remaps(launch_install, probe, checkpoint, small_params,
                                         tmp_path):
    """namespace:=, node_name:= and image_topic:= reach the node: graph names and depth."""
    ns = f'/{NS}/front'
    cam = f'/{NS}_cam/color'
    depth = probe.subscribe(Image, f'{ns}/depth/image')
    images = probe.subscribe(Image, f'{cam}/image_raw', input_qos())
    with Launched(launch_install, tmp_path / 'launch.log',
                  [f'namespace:={ns.lstrip("/")}', 'node_name:=depth_front',
                   f'image_topic:={cam}/image_raw', f'camera_info_topic:={cam}/camera_info',
                   f'weights:={checkpoint}', 'device:=cpu',
                   f'params_file:={small_params}']) as launched:
        launched.wait_node_started(probe)
        node = probe.node
        launched.wait_graph(probe, lambda: (ns, 'depth_front') in [
            (namespace, name) for name, namespace in node.get_node_names_and_namespaces()]
            and node.count_publishers(f'{ns}/depth/image') == 1
            and node.count_subscribers(f'{cam}/image_raw') >= 2
            and node.count_subscribers(f'{cam}/camera_info') == 1)
        for topic in ('depth/camera_info', 'points', 'depth/image_colored', 'diagnostics'):
            assert node.count_publishers(f'{ns}/{topic}') == 1, topic
        assert node.count_subscribers(f'{ns}/image') == 0  # remapped away
        camera = _camera(cam, tmp_path / 'camera.log', ('image:=image_raw',))
        try:
            _depth_for_camera_images(launched, probe, depth, images)
        finally:
            camera.stop()


def test_sigint_to_launch_stops_the_node_with_it(launch_install, probe, checkpoint,
                                                 small_params, tmp_path):
    """Ctrl-C on ros2 launch: the node exits cleanly with it, no orphan process is left."""
    ns = f'/{NS}/interrupted'
    with Launched(launch_install, tmp_path / 'launch.log',
                  [f'namespace:={ns}', f'weights:={checkpoint}', 'device:=cpu',
                   f'params_file:={small_params}']) as launched:
        pid = launched.wait_node_started(probe)
        launched.wait_graph(probe, lambda: probe.node.count_publishers(f'{ns}/depth/image') == 1)
        assert _running_depth_node(pid)
        status, _ = launched.process.stop(signal.SIGINT, timeout=90.0)
        log = launched.process.log_text()
        assert status == 0, log[-4000:]  # exited by itself, not killed
        assert not _running_depth_node(pid), log[-4000:]  # no orphan node
        assert f'process has finished cleanly [pid {pid}]' in log, log[-4000:]
        assert 'SIGTERM' not in log and 'SIGKILL' not in log, log[-4000:]  # no escalation
        assert probe.wait_for(lambda: probe.node.count_publishers(f'{ns}/depth/image') == 0,
                              60, 0.2)
