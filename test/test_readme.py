"""
The README and its docs/ pages say what the code does.

The full node parameter table (docs/node.md) says what `node/params.py` declares; the README's
short table only names real parameters with their real defaults; the README's test command is
what CI runs; every local link in the README and the docs it links resolves.
"""

from pathlib import Path
import re
from typing import Any, Dict, List, Tuple

from treeaspp_depth_ros.node.params import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
NODE_DOC = ROOT / 'docs' / 'node.md'
# pages whose links are checked: the README and the docs/ pages it links (CONTRACTS.md is
# maintained with the code and only checked to exist)
LINKED_DOCS = ('node.md', 'models.md', 'bags-and-slam.md', 'metric-scale.md', 'training.md',
               'training-notes.md', 'deployment.md', 'reliability.md', 'benchmarks.md')


def _value(text: str) -> Any:
    text = text.strip().strip('`')
    if text in ("''", '(required)'):
        return ''
    if text in ('true', 'false'):
        return text == 'true'
    return float(text) if re.fullmatch(r'-?[\d.]+', text) else text


def _parameter_rows(page: Path) -> Dict[str, Tuple[Any, bool]]:
    section = page.read_text().split('### Parameters', 1)[1].split('\n#', 1)[0]
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


def _expected(spec) -> Tuple[Any, bool]:
    default = float(spec.default) if isinstance(spec.default, (int, float)) and not \
        isinstance(spec.default, bool) else spec.default
    return default, not spec.read_only


def test_node_doc_parameter_table_matches_the_parameter_table():
    rows = _parameter_rows(NODE_DOC)
    assert sorted(rows) == sorted(spec.name for spec in PARAMETERS)
    for spec in PARAMETERS:
        default, live = rows[spec.name]
        expected_default, expected_live = _expected(spec)
        assert default == expected_default, spec.name
        assert live == expected_live, spec.name


def test_readme_parameter_table_names_real_parameters_with_their_defaults():
    rows = _parameter_rows(README)
    specs = {spec.name: spec for spec in PARAMETERS}
    assert len(rows) >= 10
    assert set(rows) <= set(specs), set(rows) - set(specs)
    for name, (default, live) in rows.items():
        assert (default, live) == _expected(specs[name]), name


def test_readme_starts_with_the_main_command_and_the_test_command_ci_runs():
    text = README.read_text()
    first_block = text.split('```bash\n', 1)[1].split('```', 1)[0]
    commands = [line.split('#', 1)[0].strip() for line in first_block.splitlines()]
    assert commands == ['scripts/venv.sh treeaspp-depth demo', 'scripts/test.sh']
    ci = [line.strip() for line in (ROOT / '.ci' / 'run').read_text().splitlines()
          if line.strip() and not line.startswith(('#', 'set ', 'cd '))]
    assert ci == ['scripts/test.sh']
    assert (ROOT / 'scripts' / 'test.sh').is_file()
    assert '\n## Default weights\n' in text


def _headings(page: Path) -> List[str]:
    """Return GitHub's anchors for the page's headings (code blocks skipped)."""
    anchors, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and re.match(r'#{1,6} ', line):
            title = line.lstrip('#').strip().lower()
            anchors.append(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return anchors


def _links(page: Path) -> List[str]:
    text = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)
    return re.findall(r'\]\(([^)\s]+)\)', text)


def test_local_links_in_the_readme_and_docs_resolve():
    pages = [README] + [ROOT / 'docs' / name for name in LINKED_DOCS]
    checked = 0
    for page in pages:
        assert page.is_file(), page
        for link in _links(page):
            if re.match(r'[a-z]+://', link):
                continue
            target, _, anchor = link.partition('#')
            path = (page.parent / target).resolve() if target else page
            assert path.exists(), f'{page.name}: {link}'
            if anchor:
                assert anchor in _headings(path), f'{page.name}: {link}'
            checked += 1
    linked = {Path(link.split('#')[0]).name for link in _links(README)}
    assert set(LINKED_DOCS) <= linked, set(LINKED_DOCS) - linked
    assert checked > 40
