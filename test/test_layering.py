"""
The package's imports run downward only: data/ below the bag tools, the CLI above both, no cycle.

Read from the source (every import statement, those inside functions too, since a lazy import
is an arrow all the same), so nothing is imported here. `cli.py` loads its sub-commands by
name (importlib), which is how the CLI sits above them without an import arrow.
"""

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('treeaspp_depth_ros', 'treeaspp_depth_training')
CLI = 'treeaspp_depth_ros.cli'
BAG = 'treeaspp_depth_ros.bag'
DATA = 'treeaspp_depth_ros.data'
#: the sub-commands that may raise cli.CommandError
COMMAND_LAYER = ('treeaspp_depth_ros.bag', 'treeaspp_depth_ros.tools', 'treeaspp_depth_ros.demo')


def _module_files() -> Dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob('*.py')):
            parts = list(path.relative_to(ROOT).with_suffix('').parts)
            if parts[-1] == '__init__':
                parts.pop()
            modules['.'.join(parts)] = path
    return modules


MODULES = _module_files()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + '.')


def _imports(name: str, path: Path) -> Set[str]:
    """Modules of the two packages that `name` imports, anywhere in its code."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            # `from pkg import module` imports the module, `from pkg import name` the package
            targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in MODULES else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a name, not a file
                target = target.rpartition('.')[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _reachable(start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_import_graph_is_read():
    assert len(GRAPH) > 80
    assert f'{DATA}.rosbag' in GRAPH[f'{DATA}.bag_dataset']  # a function-local import counts
    assert f'{DATA}.rosbag' in GRAPH[f'{BAG}.evaluation']  # `from package import module`


def test_the_data_layer_reaches_neither_the_bag_tools_nor_the_cli():
    for name in (n for n in GRAPH if _within(n, DATA)):
        above = sorted(t for t in _reachable(name) if _within(t, BAG) or t == CLI)
        assert not above, f'{name} reaches up to {above}'


def test_only_the_sub_commands_import_the_cli():
    users = sorted(name for name, targets in GRAPH.items() if CLI in targets)
    assert users and all(any(_within(n, layer) for layer in COMMAND_LAYER) for n in users), \
        users
    assert not [n for n in users if _within(n, 'treeaspp_depth_training')]


def test_no_import_cycle():
    """Tarjan's strongly connected components: every one a single module."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    cycles: List[List[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target in GRAPH[name]:
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert not cycles, cycles
