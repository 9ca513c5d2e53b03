"""
Run a package's launch file the way ``ros2 launch PACKAGE FILE name:=value`` does.

``python launch_runner.py PACKAGE FILE [name:=value ...]`` finds FILE in the package's share
folder through the ament index, includes it with the launch arguments and calls
``LaunchService.run()`` in the main thread of this process (launch refuses any other thread),
as ros2launch does. The tests start it as a child process from a shell that sourced a colcon
install's ``setup.sh``, and talk to the nodes it starts over DDS.

launch and launch_ros are not on PyPI: where they are not installed (a ROS machine has them),
:func:`launch_pythonpath` points at the unmodified copies in ``../shared/vendor/ros2-launch``.
This module imports neither at import time, so the test process never loads them.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

#: the real launch and launch_ros (pure Python), for tests only: see its README.md
VENDOR = Path(__file__).resolve().parents[1].parent / 'shared' / 'vendor' / 'ros2-launch'

#: printed before the launch service starts, with the folder the package is imported from
IMPORTED_FROM = 'launch_runner: treeaspp_depth_ros imported from '


def launch_pythonpath() -> Tuple[Optional[str], Optional[str]]:
    """
    Return (extra PYTHONPATH entry or None, reason to skip or None).

    An installed launch_ros wins (a ROS machine); else the vendored copy, put on PYTHONPATH
    only, so its composition_interfaces stand-in never shadows a real one.
    """
    import importlib.util
    if importlib.util.find_spec('launch_ros') is not None \
            and importlib.util.find_spec('launch') is not None:
        return None, None
    if (VENDOR / 'launch_ros' / '__init__.py').is_file() \
            and (VENDOR / 'launch' / '__init__.py').is_file():
        return str(VENDOR), None
    return None, (f'launch_ros is not installed and {VENDOR} is not present (launch and '
                  'launch_ros are not pip-installable; the launch file is checked through '
                  'describe_depth_node instead)')


def colcon_executable() -> Optional[str]:
    """Return colcon next to this Python (a venv) or on PATH (a ROS machine), else None."""
    beside = Path(sys.executable).with_name('colcon')
    return str(beside) if beside.is_file() else shutil.which('colcon')


def colcon_install(source: Path, workspace: Path, package: str,
                   timeout: float = 600.0) -> Path:
    """
    ``colcon build`` a copy of ``source`` in ``workspace``; return its ``install`` folder.

    The copy leaves out what is not part of the package (virtual environment, git, build
    outputs), as scripts/colcon_check.sh does, so the source tree is never written to.
    """
    colcon = colcon_executable()
    if colcon is None:
        raise RuntimeError('colcon not found (requirements.txt installs it; a ROS machine '
                           'has it)')
    top = {'.venv', '.git', 'build', 'install', 'log', 'demo_output', 'runs', '.pytest_cache'}

    def ignore(folder: str, names: List[str]) -> List[str]:
        return [n for n in names if n == '__pycache__' or n.endswith('.egg-info')
                or (n in top and Path(folder) == Path(source))]
    shutil.copytree(source, workspace / 'src' / package, symlinks=True, ignore=ignore)
    path = os.pathsep.join([str(Path(colcon).parent), os.environ.get('PATH', '')])
    env = dict(os.environ, PATH=path)
    result = subprocess.run(
        [colcon, 'build', '--base-paths', 'src', '--event-handlers', 'console_direct-'],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f'colcon build failed ({result.returncode}):\n'
                           f'{result.stdout[-4000:]}\n{result.stderr[-4000:]}')
    return workspace / 'install'


def command(install: Path, package: str, launch_file: str, arguments: List[str]) -> List[str]:
    """
    Return the command that sources ``install/setup.sh`` and runs this module.

    ``exec`` makes the runner the process itself, so a signal sent to it reaches launch.
    """
    script = '. "$1/setup.sh" && shift && exec "$@"'
    return ['sh', '-c', script, 'launch_runner', str(install), sys.executable,
            str(Path(__file__).resolve()), package, launch_file, *arguments]


def _find_launch_file(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_share_directory
    share = Path(get_package_share_directory(package))
    found = sorted(share.rglob(name))
    if not found:
        raise SystemExit(f'launch_runner: {name} not found in {share}')
    return str(found[0])


def main(argv: List[str]) -> int:
    """Find and run the launch file as ros2 launch does; return the service's exit code."""
    import importlib.util
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    package, name, *arguments = argv
    path = _find_launch_file(package, name)
    spec = importlib.util.find_spec(package)
    print(IMPORTED_FROM + str(Path(spec.origin).parent), flush=True)
    pairs = [argument.split(':=', 1) for argument in arguments]
    service = LaunchService(argv=arguments, noninteractive=True)
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        AnyLaunchDescriptionSource(path), launch_arguments=[tuple(p) for p in pairs])]))
    return service.run()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
