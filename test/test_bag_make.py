"""
Test make-bag on the real 7-Scenes/NYU/TUM samples and the synthetic generator.

Bags in both storage formats are read back message by message with rosbags; every bad input
is an error naming the file, with no output left behind.
"""

from pathlib import Path
import shutil

from conftest import DATA, needs
import cv2
import numpy as np
import pytest
from rosbags.interfaces import QosReliability
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_typestore, Stores
from treeaspp_depth_ros.bag.dataset_writer import write_dataset_bag
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.conversions.stamps import header_stamp_ns
from treeaspp_depth_ros.data.association import associate
from treeaspp_depth_ros.data.layouts import load_dataset
from treeaspp_depth_ros.data.records import from_arrays

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def read_bag(path: Path):
    """{topic: [(bag time, message)]}, {topic: msgtype}, {topic: offered qos} via rosbags."""
    out, types, qos = {}, {}, {}
    with Reader(path) as reader:
        for conn in reader.connections:
            types[conn.topic] = conn.msgtype
            qos[conn.topic] = conn.ext.offered_qos_profiles
        for conn, timestamp, data in reader.messages():
            msg = TYPESTORE.deserialize_cdr(data, conn.msgtype)
            out.setdefault(conn.topic, []).append((timestamp, msg))
    return out, types, qos


def image_array(msg) -> np.ndarray:
    channels = {'rgb8': 3, '16UC1': 1, '32FC1': 1}[msg.encoding]
    dtype = {'rgb8': np.uint8, '16UC1': np.uint16, '32FC1': np.float32}[msg.encoding]
    assert msg.step == msg.width * channels * np.dtype(dtype).itemsize
    array = np.frombuffer(msg.data.tobytes(), dtype=dtype)
    return array.reshape(msg.height, msg.width, channels).squeeze()


def quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def no_leftovers(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f'.{name}.')], \
        'temporary output left behind'


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_seven_scenes_bag_matches_files(tmp_path, storage):
    src = needs(DATA / '7scenes-redkitchen')
    bag = tmp_path / 'kitchen'
    rc = main(['make-bag', '--format', '7scenes', str(src), '--output', str(bag),
               '--storage', storage])
    assert rc == 0
    assert (bag / ('kitchen.mcap' if storage == 'mcap' else 'kitchen.db3')).is_file()
    messages, types, qos = read_bag(bag)
    assert types == {'/camera/image_raw': 'sensor_msgs/msg/Image',
                     '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
                     '/camera/depth_gt': 'sensor_msgs/msg/Image',
                     '/camera/pose_gt': 'geometry_msgs/msg/PoseStamped'}
    assert qos['/camera/image_raw'][0].reliability == QosReliability.RELIABLE
    colours = sorted(src.glob('frame-*.color.png'))
    assert all(len(messages[t]) == len(colours) == 50 for t in types)
    for k, colour in enumerate(colours):
        number = int(colour.name[6:12])
        expected_stamp = 1_700_000_000 * 10**9 + round(number * 1e9 / 30)
        (t_img, img), (t_info, info) = messages['/camera/image_raw'][k], \
            messages['/camera/camera_info'][k]
        t_depth, depth = messages['/camera/depth_gt'][k]
        _, pose = messages['/camera/pose_gt'][k]
        for t, msg in ((t_img, img), (t_info, info), (t_depth, depth)):
            assert t == header_stamp_ns(msg) == expected_stamp
            assert msg.header.frame_id == 'camera_color_optical_frame'
        assert img.encoding == 'rgb8' and depth.encoding == '16UC1'
        rgb = cv2.cvtColor(cv2.imread(str(colour)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(image_array(img), rgb)
        raw = cv2.imread(str(colour).replace('.color.', '.depth.'), cv2.IMREAD_UNCHANGED)
        expected = np.where(raw == 65535, 0, raw)
        np.testing.assert_array_equal(image_array(depth), expected)
        np.testing.assert_allclose(info.k.reshape(3, 3),
                                   [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
        assert (info.width, info.height) == (640, 480)
        truth = np.loadtxt(str(colour).replace('.color.png', '.pose.txt'))
        # 7-Scenes rotations are orthonormal only to ~1e-4; a quaternion can hold only the
        # rotation part, so allow the file's own deviation from a rotation.
        slack = np.abs(truth[:3, :3].T @ truth[:3, :3] - np.eye(3)).max()
        np.testing.assert_allclose(quat_to_matrix(pose.pose.orientation), truth[:3, :3],
                                   atol=2 * slack + 1e-6)
        p = pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], truth[:3, 3], atol=1e-9)


def test_nyu_samples_32fc1(tmp_path):
    src = needs(DATA / 'nyu-v2-samples')
    bag = tmp_path / 'nyu'
    assert main(['make-bag', '--format', 'nyu-test', str(src), '--output', str(bag),
                 '--depth-encoding', '32FC1', '--storage', 'mcap']) == 0
    messages, types, _ = read_bag(bag)
    assert '/camera/pose_gt' not in types
    infos = messages['/camera/camera_info']
    np.testing.assert_allclose(infos[0][1].k[[0, 4, 2, 5]],
                               [518.8579, 519.46961, 325.58245, 253.73617])
    for k, name in enumerate(['00000', '00050', '00100']):
        depth = image_array(messages['/camera/depth_gt'][k][1])
        raw = cv2.imread(str(src / f'sync_depth_{name}.png'), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.float32
        assert np.array_equal(np.isnan(depth), raw == 0)
        np.testing.assert_allclose(depth[raw > 0], raw[raw > 0] / 1000.0, rtol=1e-6)
        rgb = cv2.cvtColor(cv2.imread(str(src / f'rgb_{name}.jpg')), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(image_array(messages['/camera/image_raw'][k][1]), rgb)


def test_tum_association_and_scale(tmp_path):
    tum = needs(DATA / 'tum-fr3-long-office')
    seq = tmp_path / 'rgbd_dataset_freiburg3_long_office_household'
    (seq / 'rgb').mkdir(parents=True)
    (seq / 'depth').mkdir()
    rgb_times = [1341847980.722988, 1341847980.754743, 1341847980.786856]
    depth_times = [1341847980.723020, 1341847980.754755, 1341847980.901000]  # last: no partner
    for t in rgb_times:
        shutil.copy(tum / 'color.png', seq / 'rgb' / f'{t:.6f}.png')
    for t in depth_times:
        shutil.copy(tum / 'depth.png', seq / 'depth' / f'{t:.6f}.png')
    (seq / 'rgb.txt').write_text('# color images\n# file\n# timestamp filename\n' + ''.join(
        f'{t:.6f} rgb/{t:.6f}.png\n' for t in rgb_times))
    (seq / 'depth.txt').write_text('# depth maps\n' + ''.join(
        f'{t:.6f} depth/{t:.6f}.png\n' for t in depth_times))
    bag = tmp_path / 'tum'
    assert main(['make-bag', '--format', 'tum', str(seq), '--output', str(bag)]) == 0
    messages, _, _ = read_bag(bag)
    images, depths = messages['/camera/image_raw'], messages['/camera/depth_gt']
    assert len(images) == len(depths) == 2  # the third rgb has no depth within 20 ms
    for (t_img, img), (t_depth, depth), rt, dt in zip(images, depths, rgb_times, depth_times):
        assert header_stamp_ns(img) == t_img == round(rt * 1e9)
        assert header_stamp_ns(depth) == t_depth == round(dt * 1e9)  # depth keeps its own stamp
    raw = cv2.imread(str(tum / 'depth.png'), cv2.IMREAD_UNCHANGED)
    mm = image_array(depths[0][1])
    np.testing.assert_array_equal(mm, np.rint(raw.astype(np.float64) / 5.0).astype(np.uint16))
    info = messages['/camera/camera_info'][0][1]
    np.testing.assert_allclose(info.k[[0, 4, 2, 5]], [535.4, 539.2, 320.1, 247.6])
    listed = load_dataset('tum', seq)
    (seq / 'rgb.txt').unlink()
    (seq / 'depth.txt').unlink()
    named = load_dataset('tum', seq)  # without the lists: rgb/ and depth/ named by timestamp
    assert [(f.rgb_path, f.depth_path, f.stamp_ns, f.depth_stamp_ns) for f in named.frames] == \
        [(f.rgb_path, f.depth_path, f.stamp_ns, f.depth_stamp_ns) for f in listed.frames]


def test_associate_is_one_to_one_closest_first():
    pairs = associate(np.array([0.0, 0.033, 0.066]), np.array([0.001, 0.030, 0.031]), 0.02)
    assert pairs == [(0, 0), (1, 2)]  # 0.031 is closest to 0.033; 0.066 has no partner


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_synthetic_sequence_roundtrip(tmp_path, storage):
    synthetic = pytest.importorskip('treeaspp_depth_ros.data.synthetic')
    seq = synthetic.generate_sequence(seed=3, num_frames=5, width=96, height=64)
    dataset = from_arrays(seq.images, seq.intrinsics, seq.depths, seq.poses, fps=10.0)
    summary = write_dataset_bag(dataset, tmp_path / 'syn', storage=storage,
                                depth_encoding='32FC1', reliable=False)
    assert summary['frames'] == 5
    messages, _, qos = read_bag(tmp_path / 'syn')
    assert qos['/camera/image_raw'][0].reliability == QosReliability.BEST_EFFORT
    for k in range(5):
        t, img = messages['/camera/image_raw'][k]
        assert t == 1_700_000_000 * 10**9 + k * 100_000_000
        np.testing.assert_array_equal(image_array(img), seq.images[k])
        np.testing.assert_array_equal(image_array(messages['/camera/depth_gt'][k][1]),
                                      seq.depths[k])
        np.testing.assert_allclose(messages['/camera/camera_info'][k][1].k.reshape(3, 3),
                                   seq.intrinsics)


def test_folder_and_nyu_stack_layouts(tmp_path):
    synthetic = pytest.importorskip('treeaspp_depth_ros.data.synthetic')
    seq = synthetic.generate_sequence(seed=1, num_frames=3, width=64, height=64)
    images = tmp_path / 'images'
    depth_dir = tmp_path / 'depth'
    nyu = tmp_path / 'nyu_test'
    for folder in (images, depth_dir, nyu / 'color'):
        folder.mkdir(parents=True)
    for k in range(3):
        bgr = cv2.cvtColor(seq.images[k], cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(images / f'img{k + 1}.png'), bgr)  # natural order: img1, img2, img3
        np.save(depth_dir / f'img{k + 1}.npy', seq.depths[k])
        cv2.imwrite(str(nyu / 'color' / f'{k:04d}.png'), bgr)
    np.save(nyu / 'depth.npy', seq.depths)
    assert main(['make-bag', '--format', 'folder', str(images), '--depth-dir', str(depth_dir),
                 '--intrinsics', '50,51,32,31', '--depth-encoding', '32FC1', '--fps', '5',
                 '--output', str(tmp_path / 'folder_bag')]) == 0
    assert main(['make-bag', '--format', 'nyu-test', str(nyu), '--depth-encoding', '32FC1',
                 '--output', str(tmp_path / 'nyu_bag')]) == 0
    for name in ('folder_bag', 'nyu_bag'):
        messages, _, _ = read_bag(tmp_path / name)
        for k in range(3):
            np.testing.assert_array_equal(
                image_array(messages['/camera/image_raw'][k][1]), seq.images[k])
            np.testing.assert_array_equal(
                image_array(messages['/camera/depth_gt'][k][1]), seq.depths[k])
    messages, _, _ = read_bag(tmp_path / 'folder_bag')
    assert messages['/camera/image_raw'][1][0] - messages['/camera/image_raw'][0][0] == 2 * 10**8
    np.testing.assert_allclose(messages['/camera/camera_info'][0][1].k[[0, 4, 2, 5]],
                               [50, 51, 32, 31])
    nyu_info = read_bag(tmp_path / 'nyu_bag')[0]['/camera/camera_info'][0][1]
    np.testing.assert_allclose(nyu_info.k[0], 518.8579 * 64 / 640)  # scaled to the image size


def _seven_scenes_copy(tmp_path: Path, frames: int = 3) -> Path:
    src = needs(DATA / '7scenes-redkitchen')
    dst = tmp_path / 'seq'
    dst.mkdir()
    for colour in sorted(src.glob('frame-*.color.png'))[:frames]:
        stem = colour.name[:-len('.color.png')]
        for suffix in ('.color.png', '.depth.png', '.pose.txt'):
            shutil.copy(src / (stem + suffix), dst / (stem + suffix))
    return dst


def test_bad_dataset_inputs(tmp_path, capsys):
    seq = _seven_scenes_copy(tmp_path)
    out = tmp_path / 'out'
    frames = sorted(seq.glob('*.depth.png'))
    frames[1].unlink()  # one depth missing: mismatched counts
    assert main(['make-bag', '--format', '7scenes', str(seq), '--output', str(out)]) == 1
    assert 'mismatched 7-Scenes counts' in capsys.readouterr().err
    no_leftovers(tmp_path, 'out')

    shutil.copy(frames[0], frames[1])
    corrupt = sorted(seq.glob('*.color.png'))[2]
    corrupt.write_bytes(b'\x89PNG\r\n\x1a\n not really a png')
    assert main(['make-bag', '--format', '7scenes', str(seq), '--output', str(out)]) == 1
    assert corrupt.name in capsys.readouterr().err
    no_leftovers(tmp_path, 'out')

    folder = tmp_path / 'imgs'
    folder.mkdir()
    shutil.copy(sorted(seq.glob('*.color.png'))[0], folder / 'a.png')
    assert main(['make-bag', '--format', 'folder', str(folder), '--output', str(out)]) == 1
    assert 'no intrinsics' in capsys.readouterr().err
    assert main(['make-bag', '--format', 'tum', str(folder), '--output', str(out)]) == 1
    assert 'rgb.txt' in capsys.readouterr().err
    assert main(['make-bag', '--format', 'nyu-test', str(tmp_path / 'missing'),
                 '--output', str(out)]) == 1
    assert 'does not exist' in capsys.readouterr().err
    no_leftovers(tmp_path, 'out')


def test_existing_output_is_not_replaced(tmp_path, capsys):
    synthetic = pytest.importorskip('treeaspp_depth_ros.data.synthetic')
    seq = synthetic.generate_sequence(seed=0, num_frames=2, width=64, height=64)
    dataset = from_arrays(seq.images, seq.intrinsics, seq.depths)
    target = tmp_path / 'bag'
    target.mkdir()
    (target / 'keep.txt').write_text('user data')
    with pytest.raises(Exception, match='exists already'):
        write_dataset_bag(dataset, target)
    assert (target / 'keep.txt').read_text() == 'user data'
    write_dataset_bag(dataset, target, overwrite=True)
    assert not (target / 'keep.txt').exists()
    assert read_bag(target)[0]['/camera/image_raw'][1][1].width == 64


def test_loader_reports_unknown_format(tmp_path):
    with pytest.raises(Exception, match='unknown dataset format'):
        load_dataset('kitti', tmp_path)


def test_folder_layout_leaves_a_depth_png_out_of_the_colour_frames(tmp_path, capsys):
    """The TUM sample holds color.png and depth.png: one colour frame, and the tool says so."""
    sample = needs(DATA / 'tum-fr3-long-office')
    bag = tmp_path / 'bag'
    assert main(['make-bag', str(sample), '--format', 'folder', '--intrinsics',
                 '535.4,539.2,320.1,247.6', '-o', str(bag)]) == 0
    out = capsys.readouterr().out
    assert '1 of 1 colour frames' in out and 'depth.png' in out, out
    messages, _, _ = read_bag(bag)
    assert len(messages['/camera/image_raw']) == 1
    only_depth = tmp_path / 'only_depth'
    only_depth.mkdir()
    shutil.copy(sample / 'depth.png', only_depth / 'frame.png')
    assert main(['make-bag', str(only_depth), '--format', 'folder', '--intrinsics',
                 '535.4,539.2,320.1,247.6', '-o', str(tmp_path / 'bag2')]) == 1
    assert 'no colour frames' in capsys.readouterr().err
