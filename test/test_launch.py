"""
What depth.launch.py starts: resolved names, topics, QoS and parameter values of real processes.

launch_ros is not pip-installable, so the launch file delegates every decision to
``describe_depth_node``; these tests start that description as a real process and check the
ROS graph, and run the launch file itself where launch_ros is installed.
"""

import os
from pathlib import Path
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

import pytest
from rclpy.qos import ReliabilityPolicy
from treeaspp_depth_ros.node import dds, params
from treeaspp_depth_ros.node.description import (
    default_params_file,
    describe_depth_node,
    LAUNCH_ARGUMENTS,
)
from treeaspp_depth_ros.node.harness import isolated_env, NodeProcess, Probe, temporary_env
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = 1 + (os.getpid() + 61) % 100
NS = f'launch_test_{os.getpid()}'


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
    assert values == params.defaults()
    lines = [line.strip() for line in text.splitlines()]
    for name in values:  # a comment above each parameter or its group (fx, fy, cx, cy)
        index = lines.index(next(line for line in lines if line.startswith(f'{name}:'))) - 1
        while lines[index].split(':')[0] in values:
            index -= 1
        assert lines[index].startswith('#'), f'{name} is not documented'
    assert params.validate(dict(values, weights='x.pt')) == []


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
from treeaspp_depth_ros.node.harness import Probe
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
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    line = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60,
                          check=True).stdout.strip()
    assert line == f'export FASTDDS_DEFAULT_PROFILES_FILE={tmp_path}/treeaspp_depth_ros/' \
        'fastdds_large_shm.xml'
    assert (tmp_path / 'treeaspp_depth_ros' / 'fastdds_large_shm.xml').read_text() == \
        dds.PROFILE_XML


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


def test_launch_file_with_launch_ros(probe, checkpoint):
    """Run depth.launch.py for real (only where launch_ros is installed, e.g. a ROS machine)."""
    try:
        from launch import LaunchDescription, LaunchService
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        import launch_ros  # noqa: F401
    except ImportError as error:
        pytest.skip(f'launch/launch_ros not installed ({error}); the launch file is '
                    'checked through describe_depth_node instead')
    with temporary_env({'ROS_DOMAIN_ID': str(DOMAIN),
                        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}):
        service = LaunchService()
        service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(ROOT / 'launch' / 'depth.launch.py')),
            launch_arguments={'namespace': f'{NS}/launched', 'weights': str(checkpoint),
                              'device': 'cpu'}.items())]))
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert _wait_graph(probe, lambda: probe.node.count_publishers(
                f'/{NS}/launched/depth/image') == 1)
        finally:
            service.shutdown()
            deadline = time.monotonic() + 10
            while thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
