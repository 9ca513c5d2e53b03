"""
Nothing writes into the package, a data folder or the committed results unless told to (issue 23).

Each writing command takes an output option; without it, it writes where the user is (export),
into a fresh folder (benchmarks), or refuses with the option to use.
"""

import argparse
from pathlib import Path
import shutil

from benchmarks.common import add_output_option, resolve_output, RESULTS, RUNS

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
