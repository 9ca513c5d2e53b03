"""The README's node parameter table says what `node/params.py` declares."""

from pathlib import Path
import re
from typing import Any, Dict, Tuple

from treeaspp_depth_ros.node.params import PARAMETERS

README = Path(__file__).resolve().parents[1] / 'README.md'


def _value(text: str) -> Any:
    text = text.strip().strip('`')
    if text in ("''", '(required)'):
        return ''
    if text in ('true', 'false'):
        return text == 'true'
    return float(text) if re.fullmatch(r'-?[\d.]+', text) else text


def _readme_rows() -> Dict[str, Tuple[Any, bool]]:
    section = README.read_text().split('### Parameters', 1)[1].split('\n#', 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) != 4 or not cells[0].startswith('`'):
            continue
        names = re.findall(r'`([a-z_]+)`', cells[0])
        defaults = cells[1].split(', ')
        defaults = defaults if len(defaults) == len(names) else defaults * len(names)
        for name, default in zip(names, defaults):
            rows[name] = (_value(default), cells[2] == 'yes')
    return rows


def test_readme_parameter_table_matches_the_parameter_table():
    rows = _readme_rows()
    assert sorted(rows) == sorted(spec.name for spec in PARAMETERS)
    for spec in PARAMETERS:
        default, live = rows[spec.name]
        expected = float(spec.default) if isinstance(spec.default, (int, float)) and not \
            isinstance(spec.default, bool) else spec.default
        assert default == expected, spec.name
        assert live == (not spec.read_only), spec.name
