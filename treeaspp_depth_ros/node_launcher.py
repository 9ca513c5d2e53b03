"""
Start a depth node as its own process and talk to it over DDS, from outside the node.

A user starts the node as a separate program, so the tests, the benchmarks, the demo and live
`bag-eval` do the same: :class:`NodeProcess` starts it from a
:class:`~.node.description.NodeDescription` in an isolated ROS domain (:func:`isolated_env`),
and :class:`Probe` is a real rclpy node in its own context that publishes, subscribes and calls
the node's parameter and lifecycle services. Nothing of the node itself (:mod:`.node`) imports
this module.
"""

import collections
from contextlib import contextmanager
import os
from pathlib import Path
import signal
import subprocess
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

from .node import dds
from .node.description import NodeDescription
from .node.qos import input_qos, output_qos

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def isolated_env(domain_id: int, large_data: bool = True,
                 extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """
    Environment for a child process: its own ROS domain, discovery on this host only.

    The package root is put on PYTHONPATH so ``python -m`` works from a source checkout.
    """
    env = dds.large_data_env() if large_data else dict(os.environ, **{dds.OPT_OUT: '0'})
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_LOCALHOST_ONLY', None)  # deprecated; conflicts with the discovery range
    env['PYTHONPATH'] = os.pathsep.join(
        [str(PACKAGE_ROOT)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra or {})
    return env


@contextmanager
def temporary_env(values: Dict[str, str]) -> Iterator[None]:
    """
    Set environment variables for the block, then restore them.

    rclpy reads the domain, discovery range and Fast DDS profile from the environment when
    this process creates a DDS participant, so that is when they must hold.
    """
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class NodeProcess:
    """A child process (the depth node, a camera publisher) with its output in a log file."""

    def __init__(self, command: List[str], env: Dict[str, str], log_path: Path,
                 cwd: Optional[Path] = None) -> None:
        self.command = command
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, 'wb')
        # cwd: where a command line's relative paths (--params-file config/...) are meant from
        self.process = subprocess.Popen(command, env=env, stdout=self._log, cwd=cwd,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @classmethod
    def depth_node(cls, description: NodeDescription, env: Dict[str, str],
                   log_path: Path) -> 'NodeProcess':
        return cls(description.command(), description.process_env(env), log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def log_tail(self, lines: int = 15) -> str:
        """Return the last lines of the log, for error messages."""
        return '\n'.join(self.log_text().strip().splitlines()[-lines:])

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> Tuple[Optional[int], float]:
        """Send ``sig``; return (exit status or None if it had to be killed, seconds taken)."""
        started = time.monotonic()
        status = self.process.poll()
        if status is None:
            self.process.send_signal(sig)
            status = self.wait(timeout)
            if status is None:
                self.process.kill()
                self.process.wait(timeout=5)
        elapsed = time.monotonic() - started
        self._log.close()
        return status, elapsed

    def rss_bytes(self) -> int:
        """Resident memory of the process (Linux /proc)."""
        with open(f'/proc/{self.pid}/status') as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        return 0


class Received:
    """Messages of one topic with their arrival times. Thread-safe."""

    def __init__(self, maxlen: Optional[int] = None) -> None:
        self._lock = threading.Lock()
        #: (wall-clock arrival in ns, message): wall clock to compare with header stamps
        self.items: Deque[Tuple[int, Any]] = collections.deque(maxlen=maxlen)

    def add(self, msg: Any) -> None:
        with self._lock:
            self.items.append((time.time_ns(), msg))

    def messages(self) -> List[Any]:
        with self._lock:
            return [m for _, m in self.items]

    def arrivals(self) -> List[Tuple[int, Any]]:
        with self._lock:
            return list(self.items)

    def latest(self) -> Optional[Any]:
        with self._lock:
            return self.items[-1][1] if self.items else None

    def clear(self) -> None:
        with self._lock:
            self.items.clear()


class Probe:
    """An rclpy node in its own context and domain, spun in a background thread."""

    def __init__(self, domain_id: int, name: str = 'depth_probe') -> None:
        # Fast DDS reads its profile once per process, at the first participant: a consumer
        # of full-size images, and every participant after it here, needs the large one
        dds.apply_to_this_process()
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: B902 - the context is shut down under the executor
            pass

    def subscribe(self, msg_type: type, topic: str, qos: Optional[QoSProfile] = None,
                  maxlen: Optional[int] = None) -> Received:
        received = Received(maxlen)
        self.node.create_subscription(msg_type, topic, received.add,
                                      qos if qos is not None else output_qos())
        return received

    def publisher(self, msg_type: type, topic: str, qos: Optional[QoSProfile] = None):
        return self.node.create_publisher(msg_type, topic,
                                          qos if qos is not None else input_qos())

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 10.0) -> Any:
        """Call a service; waits for it to appear first. Raises TimeoutError."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f'service {name} did not appear within {timeout} s')
            future = client.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            if not done.wait(timeout):
                raise TimeoutError(f'service {name} did not answer within {timeout} s')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node_name: str, values: Dict[str, Any],
                       atomically: bool = False) -> List[Any]:
        """
        Set parameters on a remote node; returns the SetParametersResult list.

        ``atomically`` applies all values in one change (needed when they must agree, such
        as fx, fy, cx, cy), with one result for all of them.
        """
        from rcl_interfaces.srv import SetParameters, SetParametersAtomically
        parameters = [rclpy.Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        if atomically:
            request = SetParametersAtomically.Request(parameters=parameters)
            return [self.call(SetParametersAtomically,
                              f'{node_name}/set_parameters_atomically', request).result]
        request = SetParameters.Request(parameters=parameters)
        return self.call(SetParameters, f'{node_name}/set_parameters', request).results

    def get_parameters(self, node_name: str, names: List[str]) -> Dict[str, Any]:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        request = GetParameters.Request(names=names)
        values = self.call(GetParameters, f'{node_name}/get_parameters', request).values
        return {n: parameter_value_to_python(v) for n, v in zip(names, values)}

    def lifecycle_state(self, node_name: str) -> str:
        from lifecycle_msgs.srv import GetState
        response = self.call(GetState, f'{node_name}/get_state', GetState.Request())
        return response.current_state.label

    def lifecycle_transition(self, node_name: str, label: str) -> bool:
        """Trigger a transition by label (configure, activate, deactivate, cleanup, shutdown)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState
        ids = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP,
               'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}
        request = ChangeState.Request()
        request.transition.id = ids[label]
        return bool(self.call(ChangeState, f'{node_name}/change_state', request,
                              timeout=60.0).success)

    def wait_for(self, predicate: Callable[[], Any], timeout: float,
                 period: float = 0.05) -> Any:
        """Poll ``predicate`` until it returns something truthy; return that, or None."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(period)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)

    def __enter__(self) -> 'Probe':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
