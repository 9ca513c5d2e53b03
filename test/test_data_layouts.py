"""The neutral data package: one frame order, one intrinsics parser, its own error, no ROS."""

from pathlib import Path
import shutil
import subprocess
import sys

from conftest import DATA, needs
import cv2
import numpy as np
import pytest

from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.data import DataError
from treeaspp_depth_ros.data.files import list_images
from treeaspp_depth_ros.data.images import read_rgb
from treeaspp_depth_ros.data.intrinsics import parse_intrinsics, read_intrinsics
from treeaspp_depth_ros.data.layouts import color_frames, load_dataset
from treeaspp_depth_ros.data.sc_depth import load_scene_folder
from treeaspp_depth_training.data.scenes import load_video

K = np.array([[50.0, 0.0, 15.5], [0.0, 51.0, 11.5], [0.0, 0.0, 1.0]])
NUMBERS = (10, 1, 2)  # written out of order; frame 2 must come before frame 10


@pytest.fixture()
def numbered_video(tmp_path: Path) -> Path:
    """Frames `frame1/2/10.png` whose brightness is their number, and a cam.txt."""
    folder = tmp_path / 'video'
    folder.mkdir()
    for n in NUMBERS:
        cv2.imwrite(str(folder / f'frame{n}.png'), np.full((24, 32, 3), n, np.uint8))
    np.savetxt(folder / 'cam.txt', K)
    return folder


def test_every_folder_layout_orders_frames_naturally(numbered_video):
    expected = ['frame1.png', 'frame2.png', 'frame10.png']
    assert [p.name for p in list_images(numbered_video)] == expected
    # make-bag / demo folder reader (which finds cam.txt), SC-Depth scene, training video
    folder = load_dataset('folder', numbered_video)
    assert [f.rgb_path.name for f in folder.frames] == expected
    assert [int(folder.rgb(i)[0, 0, 0]) for i in range(3)] == [1, 2, 10]
    scene_folder = load_scene_folder(numbered_video)
    assert [f.rgb_path.name for f in scene_folder.frames] == expected
    (scene,) = load_video(numbered_video)
    assert [int(scene.frame(i)[0, 0, 0]) for i in range(3)] == [1, 2, 10]
    np.testing.assert_allclose(folder.K, K)
    np.testing.assert_allclose(scene.intrinsics, K)


def test_one_intrinsics_parser_for_every_file_form(tmp_path):
    files = {
        'cam.txt': '50 0 15.5\n0 51 11.5\n0 0 1\n',
        'commas.txt': '50, 0, 15.5; 0, 51, 11.5; 0, 0, 1',
        'four.txt': '50 51 15.5 11.5',
        'info.yaml': 'camera_matrix:\n  rows: 3\n  cols: 3\n'
                     '  data: [50, 0, 15.5, 0, 51, 11.5, 0, 0, 1]\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        np.testing.assert_allclose(read_intrinsics(tmp_path / name), K, err_msg=name)
    np.testing.assert_allclose(parse_intrinsics('50,51,15.5,11.5'), K)
    (tmp_path / 'bad.txt').write_text('0 0 1 0 0 1 0 0 1')
    with pytest.raises(DataError, match=r'bad\.txt.*not a pinhole'):
        read_intrinsics(tmp_path / 'bad.txt')
    with pytest.raises(DataError, match=r'missing\.txt'):
        read_intrinsics(tmp_path / 'missing.txt')


def test_a_folder_without_intrinsics_gets_the_placeholder_camera(numbered_video):
    """Scale calibration reads folders without intrinsics: f = width, the centre of the pixels."""
    (numbered_video / 'cam.txt').unlink()
    with pytest.raises(DataError, match='no intrinsics for image folder'):
        load_dataset('folder', numbered_video)
    folder = load_dataset('folder', numbered_video, need_intrinsics=False)
    np.testing.assert_allclose(folder.K, [[32.0, 0.0, 15.5], [0.0, 32.0, 11.5], [0.0, 0.0, 1.0]])


def test_cli_reports_data_errors_with_exit_status_1(tmp_path, capsys):
    folder = tmp_path / 'empty'
    folder.mkdir()
    with pytest.raises(DataError):
        load_dataset('folder', folder)
    assert main(['make-bag', '--format', 'folder', str(folder),
                 '--output', str(tmp_path / 'out')]) == 1
    assert f'treeaspp-depth make-bag: error: image folder {folder} contains no images' in \
        capsys.readouterr().err


def test_data_package_needs_no_ros_torch_cli_or_training():
    """The readers serve the bag tools, the demo and training alike, so they depend on none."""
    code = ('import sys\n'
            'import treeaspp_depth_ros.data.layouts, treeaspp_depth_ros.data.sc_depth\n'
            'import treeaspp_depth_ros.data.synthetic\n'
            "print(sorted(m for m in ('torch', 'rclpy', 'rosbags', 'treeaspp_depth_ros.cli',\n"
            "                         'training') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == '[]'


def test_a_16_bit_depth_map_is_never_read_as_colour(tmp_path):
    """read_rgb refuses it, however named; the layouts find the same colour frames."""
    nyu = needs(DATA / 'nyu-v2-samples')
    renamed = tmp_path / 'frame.png'
    shutil.copy(nyu / 'sync_depth_00000.png', renamed)
    with pytest.raises(DataError, match='16-bit'):
        read_rgb(renamed)
    frames, used = color_frames(nyu)
    assert [p.name for p in frames] == ['rgb_00000.jpg', 'rgb_00050.jpg', 'rgb_00100.jpg']
    assert used.startswith('3 of 3 colour frames (nyu-test layout')
