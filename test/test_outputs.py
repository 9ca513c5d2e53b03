"""
Nothing writes into the package, a data folder or the committed results unless told to (issue 23).

Each writing command takes an output option; without it, it writes where the user is (export),
into a fresh folder (benchmarks), or refuses with the option to use.
"""

import argparse
from pathlib import Path
import shutil

from benchmarks.common import add_output_option, resolve_output, RESULTS, RUNS
from treeaspp_depth_ros.cli import main
from treeaspp_depth_ros.data.synthetic import generate_sequence, save_sequence
from treeaspp_depth_ros.weights import PACKAGE_DIR
from treeaspp_depth_training.config import load_config
from treeaspp_depth_training.data.builders import build_train_dataset
from treeaspp_depth_training.data.scenes import SAMPLES_SUFFIX
from treeaspp_depth_training.scripts.select_frames import main as select_frames_main

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_write_a_fresh_run_folder_unless_told(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_output_option(parser, 'model.json')
    assert 'benchmarks/results/model.json' in parser.format_help()
    default = parser.parse_args([]).output
    first, second = resolve_output(default, 'model.json'), resolve_output(default, 'model.json')
    try:
        assert first.name == second.name == 'model.json' and first.parent != second.parent
        assert first.parent.parent == RUNS and first.parent.is_dir()
        assert f'--output {RESULTS / "model.json"} regenerates' in capsys.readouterr().out
    finally:
        shutil.rmtree(first.parent)
        shutil.rmtree(second.parent)
    chosen = tmp_path / 'model.json'
    assert resolve_output(parser.parse_args(['--output', str(chosen)]).output,
                          'model.json') == chosen


def test_no_benchmark_defaults_to_the_committed_results():
    """Every benchmark with an output option takes it through add_output_option."""
    scripts = [p for p in sorted((ROOT / 'benchmarks').glob('*.py')) if p.name != 'common.py']
    writers = [p for p in scripts if "'--output" in p.read_text()
               or 'add_output_option' in p.read_text()]
    assert len(writers) >= 17
    for path in writers:
        text = path.read_text()
        assert 'add_output_option(parser' in text and 'resolve_output(' in text, path.name
        assert "/ 'results'" not in text and "'benchmarks/results/" not in text, path.name


def test_export_without_output_writes_to_the_current_directory(baseline_weights, tmp_path,
                                                               monkeypatch, capsys):
    """Not beside the checkpoint (the shipped one is in the package); never into the package."""
    monkeypatch.chdir(tmp_path)
    assert main(['export', '--weights', str(baseline_weights), '--input-size', '64x64']) == 0
    written = tmp_path / f'{baseline_weights.stem}.onnx'
    assert written.is_file() and not baseline_weights.with_suffix('.onnx').exists()
    assert str(written) in capsys.readouterr().out
    monkeypatch.chdir(PACKAGE_DIR)
    assert main(['export', '--weights', str(baseline_weights), '--input-size', '64x64']) == 1
    assert 'inside the installed package; pass --output FILE' in capsys.readouterr().err
    assert not (PACKAGE_DIR / f'{baseline_weights.stem}.onnx').exists()


def test_select_frames_leaves_the_data_folder_alone_and_training_reads_its_output(
        tmp_path, monkeypatch, capsys):
    data = tmp_path / 'data'
    save_sequence(generate_sequence(seed=3, num_frames=8, width=64, height=64), data / 'walk')
    before = sorted(p.name for p in (data / 'walk').iterdir())
    monkeypatch.chdir(tmp_path)
    assert select_frames_main([str(data), '--method', 'stride']) == 0
    assert sorted(p.name for p in (data / 'walk').iterdir()) == before
    selection = tmp_path / 'samples' / f'walk{SAMPLES_SUFFIX}'
    lines = selection.read_text().split('\n')[:-1]
    assert lines and '--data.samples samples' in capsys.readouterr().out
    selection.write_text('\n'.join(lines[:2]) + '\n')  # a selection of our own: two samples
    config = load_config(overrides={'data.format': 'video', 'data.root': str(data),
                                    'data.samples': 'samples', 'data.width': 64,
                                    'data.height': 64, 'data.verify': 'off'})
    assert len(build_train_dataset(config)) == 2
