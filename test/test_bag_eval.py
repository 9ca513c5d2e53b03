"""
Test bag-eval offline and calibrate-scale on real (7-Scenes) and synthetic bags.

Metrics are checked against a direct computation, the recorded SLAM bag against the node's
contracts, and every bad input gives a clear error naming topic/file, exit 1 and no output.
"""

import json
from pathlib import Path

from conftest import KITCHEN
import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import get_typestore, Stores
from treeaspp_depth_ros.bag import bagio
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.checkpoint import load_checkpoint
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
from treeaspp_depth_ros.data.layouts import load_dataset
from treeaspp_depth_ros.data.records import from_arrays
from treeaspp_depth_ros.inference import DepthEstimator
from treeaspp_depth_ros.metrics import compute_depth_metrics, METRIC_NAMES

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
SIZE = '128x96'
TOPICS = ['--image-topic', '/camera/image_raw', '--depth-topic', '/camera/depth_gt']


@pytest.fixture(scope='module')
def weights(baseline_weights) -> Path:
    return baseline_weights


@pytest.fixture(scope='module')
def kitchen_bags(tmp_path_factory, kitchen_dir):
    folder = tmp_path_factory.mktemp('bags')
    dataset = load_dataset('7scenes', kitchen_dir)
    bags = {}
    for storage in ('sqlite3', 'mcap'):
        bags[storage] = folder / f'kitchen_{storage}'
        write_dataset_bag(dataset, bags[storage], storage=storage)
    return bags


@pytest.fixture(scope='module')
def synthetic():
    module = pytest.importorskip('treeaspp_depth_ros.data.synthetic')
    return module.generate_sequence(seed=7, num_frames=6, width=128, height=96)


def evaluate(bag: Path, weights: Path, out: Path, *extra: str) -> dict:
    rc = main(['bag-eval', str(bag), *TOPICS, '--weights', str(weights), '--input-size', SIZE,
               '--output', str(out), *extra])
    assert rc == 0
    return json.loads((out / 'report.json').read_text())


def test_offline_report_matches_direct_computation(kitchen_bags, weights, tmp_path, capsys):
    report = evaluate(kitchen_bags['sqlite3'], weights, tmp_path / 'report')
    assert report['frames'] == report['frames_paired'] == 50
    said = capsys.readouterr()  # what is done, at what size, and progress (not a terminal)
    assert f'input {SIZE} (requested)' in said.out
    assert '[bag-eval] offline inference: 50 frames to do' in said.err
    assert 'done in' in said.err
    for key in ('median_scaled', 'global_scaled'):
        assert set(METRIC_NAMES) <= set(report[key])
        assert all(np.isfinite(report[key][m]) for m in METRIC_NAMES)
    for key in ('scale_ratio_cv', 'fps', 'global_scale'):
        assert np.isfinite(report[key]) and report[key] > 0
    for name in ('report.md', 'metrics_over_time.png', 'scale_ratio.png', 'samples.png'):
        assert (tmp_path / 'report' / name).is_file()
    assert cv2.imread(str(tmp_path / 'report' / 'samples.png')) is not None
    frames = report['per_frame']
    ratios = np.array([f['scale_ratio'] for f in frames])
    assert report['global_scale'] == pytest.approx(np.median(ratios), rel=1e-12)
    assert report['scale_ratio_cv'] == pytest.approx(ratios.std() / ratios.mean(), rel=1e-9)
    for m in METRIC_NAMES:
        assert report['median_scaled'][m] == pytest.approx(
            np.mean([f['median_scaled'][m] for f in frames]), rel=1e-12)
    # Independent path: files -> estimator -> metrics, for a few frames.
    estimator = DepthEstimator(weights, device='cpu', input_size=(128, 96))
    colours = sorted(KITCHEN.glob('frame-*.color.png'))
    for k in (0, 17, 49):
        rgb = cv2.cvtColor(cv2.imread(str(colours[k])), cv2.COLOR_BGR2RGB)
        raw = cv2.imread(str(colours[k]).replace('.color.', '.depth.'), cv2.IMREAD_UNCHANGED)
        gt = np.where((raw == 0) | (raw == 65535), np.nan, raw / 1000.0)
        pred = estimator.predict(rgb)
        median = compute_depth_metrics(pred, gt, scale='median')
        fixed = compute_depth_metrics(pred, gt, scale=report['global_scale'])
        assert frames[k]['scale_ratio'] == pytest.approx(median['scale'], rel=1e-5)
        for m in METRIC_NAMES:
            assert frames[k]['median_scaled'][m] == pytest.approx(median[m], rel=1e-5, abs=1e-7)
            assert frames[k]['global_scaled'][m] == pytest.approx(fixed[m], rel=1e-5, abs=1e-7)
    md = (tmp_path / 'report' / 'report.md').read_text()
    assert f'{report["median_scaled"]["abs_rel"]:.4f}' in md


def test_sqlite3_and_mcap_give_identical_reports(kitchen_bags, weights, tmp_path):
    a = evaluate(kitchen_bags['sqlite3'], weights, tmp_path / 'a', '--max-frames', '12')
    b = evaluate(kitchen_bags['mcap'], weights, tmp_path / 'b', '--max-frames', '12')
    assert a['frames'] == b['frames'] == 12
    for key in ('median_scaled', 'global_scaled'):
        assert a[key] == b[key]
    assert a['scale_ratio_cv'] == b['scale_ratio_cv']


def read_all(bag: Path):
    out, types = {}, {}
    with Reader(bag) as reader:
        for conn in reader.connections:
            types[conn.topic] = conn.msgtype
        for conn, timestamp, data in reader.messages():
            out.setdefault(conn.topic, []).append(
                (timestamp, TYPESTORE.deserialize_cdr(data, conn.msgtype)))
    return out, types


def test_record_out_follows_node_contracts(kitchen_bags, weights, tmp_path):
    out = tmp_path / 'slam'
    rc = main(['bag-eval', str(kitchen_bags['mcap']), *TOPICS, '--weights', str(weights),
               '--input-size', SIZE, '--max-frames', '6', '--record-out', str(out),
               '--record-storage', 'mcap'])
    assert rc == 0
    recorded, types = read_all(out)
    source, _ = read_all(kitchen_bags['mcap'])
    assert types == {'/camera/image_raw': 'sensor_msgs/msg/Image',
                     '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
                     '/camera/depth/image': 'sensor_msgs/msg/Image',
                     '/camera/depth/camera_info': 'sensor_msgs/msg/CameraInfo',
                     '/camera/points': 'sensor_msgs/msg/PointCloud2',
                     '/tf_static': 'tf2_msgs/msg/TFMessage'}
    inputs = source['/camera/image_raw'][:6]
    estimator = DepthEstimator(weights, device='cpu', input_size=(128, 96))
    for k, (t_in, image_in) in enumerate(inputs):
        for topic in ('/camera/image_raw', '/camera/camera_info', '/camera/depth/image',
                      '/camera/depth/camera_info', '/camera/points'):
            t, msg = recorded[topic][k]
            assert t == header_stamp_ns(msg) == header_stamp_ns(image_in) == t_in, topic
            assert msg.header.frame_id == image_in.header.frame_id
        image = recorded['/camera/image_raw'][k][1]
        np.testing.assert_array_equal(image.data, image_in.data)
        depth_msg = recorded['/camera/depth/image'][k][1]
        assert depth_msg.encoding == '32FC1'
        assert (depth_msg.width, depth_msg.height, depth_msg.step) == (640, 480, 640 * 4)
        depth = np.frombuffer(depth_msg.data.tobytes(), np.float32).reshape(480, 640)
        rgb = np.frombuffer(image_in.data.tobytes(), np.uint8).reshape(480, 640, 3)
        np.testing.assert_allclose(depth, estimator.predict(rgb), rtol=1e-5)
        info = recorded['/camera/depth/camera_info'][k][1]
        assert (info.width, info.height) == (640, 480)
        np.testing.assert_allclose(info.k[[0, 4, 2, 5]], [585, 585, 320, 240])
        cloud = recorded['/camera/points'][k][1]
        assert (cloud.height, cloud.width, cloud.is_dense) == (480, 640, False)
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields][:3] == \
            [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)]
        assert cloud.row_step == cloud.point_step * 640
        xyz = np.frombuffer(cloud.data.tobytes(), np.float32).reshape(
            480, 640, cloud.point_step // 4)
        np.testing.assert_allclose(xyz[:, :, 2], depth, rtol=1e-6)
        v, u = 100, 500
        np.testing.assert_allclose(xyz[v, u, 0], (u - 320) / 585 * depth[v, u], rtol=1e-5)
        np.testing.assert_allclose(xyz[v, u, 1], (v - 240) / 585 * depth[v, u], rtol=1e-5)
    (_, tf), = recorded['/tf_static']
    assert tf.transforms[0].child_frame_id == inputs[0][1].header.frame_id
    settings = (out / 'orbslam3_rgbd.yaml').read_text()
    assert 'RGBD.DepthMapFactor: 1.0' in settings and 'Camera1.fx: 585.000000' in settings
    assert 'Camera.fps: 30\n' in settings  # the kitchen bag's 30 Hz stamps
    with Reader(out) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles[0] for c in reader.connections}
    assert qos['/tf_static'].durability.name == 'TRANSIENT_LOCAL'
    assert qos['/camera/depth/image'].reliability.name == 'RELIABLE'


def test_calibrate_scale_makes_depth_metric(kitchen_bags, weights, tmp_path, capsys):
    calibrated = tmp_path / 'calibrated.pt'
    rc = main(['calibrate-scale', '--weights', str(weights), '--bag',
               str(kitchen_bags['sqlite3']), *TOPICS, '--input-size', SIZE,
               '--max-frames', '10', '--output', str(calibrated),
               '--report', str(tmp_path / 'cal.json')])
    assert rc == 0
    cal = json.loads((tmp_path / 'cal.json').read_text())
    assert 'depth_scale' not in load_checkpoint(weights)  # input untouched
    ckpt = load_checkpoint(calibrated)
    assert ckpt['depth_scale'] == pytest.approx(cal['depth_scale'])
    assert ckpt['depth_scale_calibration']['frames'] == 10
    # where the scale came from: which data, how many frames, which method
    bag = kitchen_bags['sqlite3']
    assert ckpt['depth_scale_origin'] == (f'calibrated on bag {bag} ({TOPICS[1]}, '
                                          f'{TOPICS[3]}) (10 frames, ground-truth depth)')
    assert ckpt['depth_scale_synthetic'] is False
    raw = evaluate(kitchen_bags['sqlite3'], weights, tmp_path / 'raw', '--max-frames', '10')
    assert 'metric: none (no depth scale: run calibrate-scale)' in capsys.readouterr().out
    assert cal['depth_scale'] == pytest.approx(raw['global_scale'], rel=1e-9)
    assert cal['scale_ratio_cv'] == pytest.approx(raw['scale_ratio_cv'], rel=1e-9)
    metric = evaluate(kitchen_bags['sqlite3'], calibrated, tmp_path / 'metric',
                      '--max-frames', '10')
    assert metric['scale_is_metric'] is True
    assert metric['scale_origin'] == ckpt['depth_scale_origin']
    # the console line gives the metric figure (the weights' own scale) beside the others
    assert (f"metric (x{metric['depth_scale']:.4g}, {ckpt['depth_scale_origin']}) AbsRel "
            f"{metric['metric']['abs_rel']:.4f}") in capsys.readouterr().out
    assert metric['global_scale'] == pytest.approx(1.0, rel=1e-5)
    for m in METRIC_NAMES:
        assert metric['metric'][m] == pytest.approx(raw['global_scaled'][m], rel=1e-4, abs=1e-6)
    assert (tmp_path / 'metric' / 'report.md').read_text().count('metric (calibrated') == 1

    sidecar_weights = tmp_path / 'side.pt'
    sidecar_weights.write_bytes(weights.read_bytes())
    assert main(['calibrate-scale', '--weights', str(sidecar_weights), '--dataset', str(KITCHEN),
                 '--format', '7scenes', '--input-size', SIZE, '--max-frames', '10',
                 '--sidecar']) == 0
    import yaml
    side = yaml.safe_load(Path(str(sidecar_weights) + '.scale.yaml').read_text())
    assert side['depth_scale'] == pytest.approx(cal['depth_scale'], rel=1e-9)  # mm PNG == bag
    assert 'depth_scale' not in load_checkpoint(sidecar_weights)
    from treeaspp_depth_ros.inference import DepthEstimator
    estimator = DepthEstimator(sidecar_weights, device='cpu', input_size=(64, 64))
    assert estimator.scale_is_metric  # the node and bag-eval honour the sidecar
    assert estimator.scale_origin == f'sidecar side.pt.scale.yaml: calibrated on 7scenes ' \
        f'dataset {KITCHEN} (10 frames, ground-truth depth)'
    assert estimator.depth_scale == pytest.approx(side['depth_scale'], rel=1e-9)


# ---------------------------------------------------------------- bad inputs


def _image_msgs(seq, k, encoding='32FC1'):
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    from treeaspp_depth_ros.conversions.image import depth_to_image_msg, rgb_to_image_msg
    header = Header(stamp=Time(sec=1000, nanosec=k * 1000), frame_id='cam')
    depth = rgb_to_image_msg(seq.images[k], header) if encoding == 'rgb8' else \
        depth_to_image_msg(seq.depths[k], header, encoding)
    return rgb_to_image_msg(seq.images[k], header), depth


def _custom_bag(path: Path, seq, images: int, depths: int, depth_encoding='32FC1',
                storage='sqlite3'):
    with bagio.BagWriter(path, storage=storage) as writer:
        writer.add_topic('/camera/image_raw', bagio.IMAGE)
        writer.add_topic('/camera/depth_gt', bagio.IMAGE)
        for k in range(max(images, depths)):
            image, depth = _image_msgs(seq, k, depth_encoding)
            if k < images:
                writer.write('/camera/image_raw', 1000 * 10**9 + k * 1000, image)
            if k < depths:
                writer.write('/camera/depth_gt', 1000 * 10**9 + k * 1000, depth)
    return path


def _fails(capsys, bag, weights, tmp_path, *args, expect, record=True):
    out, rec = tmp_path / 'report', tmp_path / 'rec'
    argv = ['bag-eval', str(bag), '--weights', str(weights), '--input-size', SIZE,
            '--output', str(out), *args]
    if record:
        argv += ['--record-out', str(rec)]
    if '--image-topic' not in args:
        argv += TOPICS
    assert main(argv) == 1
    err = capsys.readouterr().err
    for text in expect:
        assert text in err, err
    for name in ('report', 'rec'):
        assert not (tmp_path / name).exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(f'.{name}.')]
    return err


def test_bad_bags(tmp_path, capsys, synthetic, weights):
    good = tmp_path / 'good'
    write_dataset_bag(from_arrays(synthetic.images, synthetic.intrinsics, synthetic.depths),
                      good)
    _fails(capsys, good, weights, tmp_path, '--image-topic', '/nope', '--depth-topic',
           '/camera/depth_gt', expect=['/nope', 'is not in bag', '/camera/image_raw'])
    _fails(capsys, good, weights, tmp_path, '--image-topic', '/camera/image_raw',
           '--depth-topic', '/camera/camera_info',
           expect=['/camera/camera_info', 'sensor_msgs/msg/CameraInfo'])
    _fails(capsys, tmp_path / 'missing_bag', weights, tmp_path, expect=['missing_bag'])

    mismatched = _custom_bag(tmp_path / 'mismatched', synthetic, images=5, depths=4)
    _fails(capsys, mismatched, weights, tmp_path, record=False, expect=[
        'mismatched', '5 images on /camera/image_raw', '4 depth maps on /camera/depth_gt'])
    assert main(['bag-eval', str(mismatched), *TOPICS, '--weights', str(weights),
                 '--input-size', SIZE, '--allow-unmatched']) == 0
    assert 'offline: 4 frames' in capsys.readouterr().out

    wrong_encoding = _custom_bag(tmp_path / 'rgbdepth', synthetic, 3, 3, depth_encoding='rgb8')
    _fails(capsys, wrong_encoding, weights, tmp_path, record=False,
           expect=['/camera/depth_gt', "unsupported depth encoding 'rgb8'"])

    depth_as_image = tmp_path / 'depthimage'
    with bagio.BagWriter(depth_as_image) as writer:
        writer.add_topic('/camera/image_raw', bagio.IMAGE)
        writer.add_topic('/camera/depth_gt', bagio.IMAGE)
        for k in range(2):
            _, depth = _image_msgs(synthetic, k)
            writer.write('/camera/image_raw', 10**12 + k * 1000, depth)  # 32FC1 as "colour"
            writer.write('/camera/depth_gt', 10**12 + k * 1000, depth)
    _fails(capsys, depth_as_image, weights, tmp_path, record=False,
           expect=['image topic /camera/image_raw', "unsupported encoding '32FC1'"])

    empty = tmp_path / 'empty'
    with bagio.BagWriter(empty) as writer:
        writer.add_topic('/camera/image_raw', bagio.IMAGE)
    _fails(capsys, empty, weights, tmp_path, expect=['empty', 'contains no messages'])

    (tmp_path / 'notabag').mkdir()
    _fails(capsys, tmp_path / 'notabag', weights, tmp_path, expect=['notabag'])

    for storage in ('sqlite3', 'mcap'):
        corrupt = tmp_path / f'corrupt_{storage}'
        _custom_bag(corrupt, synthetic, 3, 3, storage=storage)
        data = next(p for p in corrupt.iterdir() if p.suffix in ('.db3', '.mcap'))
        blob = bytearray(data.read_bytes())
        if storage == 'sqlite3':
            blob[:100] = b'\0' * 100  # destroy the sqlite header
        else:
            del blob[len(blob) // 3:]  # truncated recording
        data.write_bytes(bytes(blob))
        _fails(capsys, corrupt, weights, tmp_path, record=False, expect=[f'corrupt_{storage}'])


def test_record_out_says_its_size_as_it_goes_and_can_drop_the_clouds(
        kitchen_bags, weights, tmp_path, capsys):
    """10 kitchen frames: a size line, the clouds' share, and --record-no-points without them."""
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(['bag-eval', '--help'])
    assert 'xyzrgb point cloud' in capsys.readouterr().out
    sizes = {}
    for name, extra in (('all', []), ('no_points', ['--record-no-points'])):
        out = tmp_path / name
        assert main(['bag-eval', str(kitchen_bags['sqlite3']), *TOPICS, '--weights',
                     str(weights), '--input-size', SIZE, '--max-frames', '10', '--no-motion',
                     '--record-out', str(out), *extra]) == 0
        said = capsys.readouterr().out
        assert '[record-out] 10 frames, ' in said and f'recorded: {out} (' in said
        sizes[name] = sum(f.stat().st_size for f in out.rglob('*') if f.is_file())
        topics = set(read_all(out)[1])
        assert ('/camera/points' in topics) == (name == 'all')
        assert ('% point clouds; --record-no-points drops them' in said) == (name == 'all')
    assert sizes['no_points'] < 0.3 * sizes['all']  # the clouds are most of the bag


def test_no_camera_info_for_record_out_is_an_error(tmp_path, capsys, synthetic, weights):
    bag = _custom_bag(tmp_path / 'noinfo', synthetic, 2, 2)
    assert main(['bag-eval', str(bag), *TOPICS, '--weights', str(weights), '--input-size', SIZE,
                 '--record-out', str(tmp_path / 'rec')]) == 1
    assert 'camera_info' in capsys.readouterr().err
    assert not (tmp_path / 'rec').exists()


def test_bad_weights_and_options(tmp_path, capsys, synthetic):
    bag = _custom_bag(tmp_path / 'b', synthetic, 2, 2)
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'not a checkpoint')
    assert main(['bag-eval', str(bag), *TOPICS, '--weights', str(bad)]) == 1
    assert 'bad.pt' in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage_error:  # argparse: a bad option exits 2
        main(['bag-eval', str(bag), *TOPICS, '--weights', str(bad), '--input-size', '100x100'])
    assert usage_error.value.code == 2
    assert 'multiples of 32' in capsys.readouterr().err


def test_writer_failure_leaves_nothing(tmp_path, synthetic):
    target = tmp_path / 'half'
    with pytest.raises(RuntimeError):
        with bagio.atomic_output(target) as staging:
            with bagio.BagWriter(staging) as writer:
                writer.add_topic('/x', bagio.IMAGE)
                writer.write('/x', 1, _image_msgs(synthetic, 0)[0])
                raise RuntimeError('interrupted')
    assert list(tmp_path.iterdir()) == []


def test_rosbags_bytes_equal_rclpy_serialisation(synthetic):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image
    image, _ = _image_msgs(synthetic, 1)
    data = bagio.serialize(image)
    back = bagio.deserialize(data, bagio.IMAGE)
    assert (back.height, back.width, back.encoding) == (image.height, image.width, 'rgb8')
    np.testing.assert_array_equal(back.data, np.frombuffer(bytes(image.data), np.uint8))
    # Same bytes up to CDR alignment padding (rclpy leaves it uninitialised): rclpy reads
    # rosbags' serialisation back into an equal message.
    again = bytes(TYPESTORE.serialize_cdr(back, bagio.IMAGE))
    assert len(again) == len(data)
    assert deserialize_message(again, Image) == image


def test_reader_reports_unwritable_writer(tmp_path):
    bag = tmp_path / 'w'
    writer = Writer(bag, version=8)
    writer.open()
    writer.close()  # no connections, no messages
    with pytest.raises(Exception, match='no messages'):
        bagio.BagReader(bag)


def test_exported_onnx_through_bag_eval_matches_torch(kitchen_bags, weights, tmp_path):
    """``--weights model.onnx`` (no --backend: an ONNX one): the same report as torch."""
    onnx_file = tmp_path / 'model.onnx'
    assert main(['export', '--weights', str(weights), '--format', 'onnx', '--input-size', SIZE,
                 '--output', str(onnx_file)]) == 0
    first = ('--max-frames', '12')
    torch_report = evaluate(kitchen_bags['mcap'], weights, tmp_path / 'torch', *first)
    onnx_report = evaluate(kitchen_bags['mcap'], onnx_file, tmp_path / 'onnx', *first)
    assert onnx_report['backend'].startswith(('onnxruntime (CPU', 'openvino (CPU'))
    assert torch_report['backend'].startswith('torch')
    assert onnx_report['frames'] == torch_report['frames'] == 12
    for key in ('median_scaled', 'global_scaled'):
        for metric in METRIC_NAMES:
            assert onnx_report[key][metric] == pytest.approx(torch_report[key][metric],
                                                             rel=1e-4, abs=1e-6)
