"""The project's own parallel collector: MT10's tasks split over worker processes, arrays in shared memory.

Gymnasium's async vector env sends every step's observations and info dicts through pipes as pickles, and on a
2-core machine that overhead eats the second core. Here each worker owns a group of tasks and steps
its environments directly; actions and results live in shared-memory arrays, and a step costs one short
message per worker to start it and one to say it is done. The main process blocks (it does not spin) while
the workers step, so W workers on W cores run the simulator at close to W times one core's rate.

Autoreset follows Gymnasium's same-step mode, as `MT10` expects: where an episode ends, `next_obs` is its
final observation and `obs` already the next episode's reset observation.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import Any

import gymnasium as gym
import numpy as np

_FIELDS = {  # name: (dtype, per-task shape key)
    "action": (np.float32, "action"),
    "obs": (np.float32, "obs"),
    "next_obs": (np.float32, "obs"),
    "reward": (np.float32, None),
    "terminated": (np.bool_, None),
    "truncated": (np.bool_, None),
    "success": (np.float32, None),
}


@dataclass
class _SharedArrays:
    """Shared-memory buffers, viewed as numpy arrays with a leading task axis."""

    buffers: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]

    @classmethod
    def allocate(cls, num_envs: int, obs_dim: int, action_dim: int, context) -> "_SharedArrays":
        dims = {"obs": (obs_dim,), "action": (action_dim,), None: ()}
        shapes = {name: (num_envs, *dims[key]) for name, (_, key) in _FIELDS.items()}
        buffers = {name: context.RawArray("b", int(np.prod(shapes[name])) * np.dtype(_FIELDS[name][0]).itemsize)
                   for name in _FIELDS}
        return cls(buffers, shapes)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.frombuffer(self.buffers[name], dtype=_FIELDS[name][0]).reshape(self.shapes[name])
                for name in _FIELDS}


class CollectorError(RuntimeError):
    """A worker process is gone (killed, or crashed); the message says which and how."""


def _worker(env_fns: list[Callable[[], gym.Env]], rows: list[int], shared: _SharedArrays, conn: Connection) -> None:
    """Own the environments of task `rows`; step them when told, writing results into the shared arrays."""
    # SIGINT and SIGTERM stay blocked here from birth (`WorkerPool`): a Ctrl-C or a scheduler's SIGTERM to the
    # process group is for the main process, which finishes its step (one a worker may be in the middle of) and
    # then closes the pool. Were the main process killed outright, or did it exit without closing the pool, `recv`
    # below fails once its end of the pipe is gone, and the worker exits.
    envs = [fn() for fn in env_fns]
    a = shared.arrays()
    try:
        while True:
            try:
                command, args = conn.recv()
            except EOFError:  # the main process ended without closing the pool
                break
            if command == "step":
                results = []
                for env, action in zip(envs, a["action"][rows]):
                    obs, reward, terminated, truncated, info = env.step(action)
                    reset_obs = env.reset()[0] if terminated or truncated else obs
                    results.append((reset_obs, obs, reward, terminated, truncated, info.get("success", 0.0)))
                for name, column in zip(("obs", "next_obs", "reward", "terminated", "truncated", "success"),
                                        zip(*results)):
                    a[name][rows] = column  # one write per field
                conn.send(None)
            elif command == "reset":
                for row, env in zip(rows, envs):
                    a["obs"][row] = env.reset()[0]
                conn.send(None)
            elif command == "call":  # a method or attribute of every env, through its wrappers
                name, call_args = args
                results = []
                for env in envs:
                    attr = env.get_wrapper_attr(name)
                    results.append(attr(*call_args) if callable(attr) else attr)
                conn.send(results)
            elif command == "close":
                break
    finally:
        for env in envs:
            env.close()
        conn.close()


class WorkerPool:
    """`num_workers` processes stepping `env_fns` (one environment per task), results in shared memory."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]], obs_dim: int, action_dim: int, num_workers: int = 2):
        num_envs = len(env_fns)
        if not 1 <= num_workers <= num_envs:
            raise ValueError(f"num_workers must be in [1, {num_envs}], got {num_workers}")
        context = mp.get_context("spawn")  # no inherited torch or OpenMP state in the workers
        self.shared = _SharedArrays.allocate(num_envs, obs_dim, action_dim, context)
        self.arrays = self.shared.arrays()
        # tasks dealt out in turn (worker w gets tasks w, w + W, ...): MT10 lists its costliest tasks (push,
        # pick-place) side by side, so contiguous groups would leave one worker with most of the work
        self.rows = [list(range(w, num_envs, num_workers)) for w in range(num_workers)]
        self.connections: list[Connection] = []
        self.processes = []
        # a pool its owner never closed (an error, or a second Ctrl-C, between building it and using it; even one
        # that arrives while the workers start, and is delivered when the signal mask below is restored) is closed
        # at exit, before multiprocessing's own exit hook (registered earlier, so run later), which would SIGTERM
        # the workers, a signal they block, and then wait for them forever
        self._closed = False
        atexit.register(self.close)
        # the workers inherit a signal mask blocking SIGINT and SIGTERM, which holds in them for life: a signal to
        # the process group while they start (importing takes seconds) cannot end one; this process receives a
        # signal that arrives meanwhile once its own mask is restored. multiprocessing's resource tracker starts
        # first, as starting it unblocks both signals in this process
        resource_tracker.ensure_running()
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for rows in self.rows:
                parent, child = context.Pipe()
                process = context.Process(target=_worker, daemon=True,
                                          args=([env_fns[r] for r in rows], rows, self.shared, child))
                process.start()
                self.connections.append(parent)
                self.processes.append(process)
                child.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)

    def _send(self, command: str, args: Any = None) -> None:
        try:
            for conn in self.connections:
                conn.send((command, args))
        except OSError:
            self._gone()

    def _receive(self) -> list[Any]:
        try:
            return [conn.recv() for conn in self.connections]
        except (EOFError, OSError):
            self._gone()

    def _gone(self) -> None:
        codes = [p.exitcode for p in self.processes]
        raise CollectorError(f"a collector worker process is gone (exit codes {codes}; negative: killed by that "
                             f"signal)") from None

    def _broadcast(self, command: str, args: Any = None) -> list[Any]:
        self._send(command, args)
        return self._receive()

    def reset(self) -> np.ndarray:
        self._broadcast("reset")
        return self.arrays["obs"].copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step of every env and return at once: the workers step while this process does other work."""
        self.arrays["action"][:] = actions
        self._send("step")

    def step_wait(self) -> dict[str, np.ndarray]:
        """Wait for the step `step_async` started; returns copies of obs, next_obs, reward, terminated, truncated
        and success, one row per env."""
        self._receive()
        return {name: self.arrays[name].copy() for name in _FIELDS if name != "action"}

    def call(self, name: str, *args: Any) -> tuple[Any, ...]:
        """`name` on every env (a method called with `args`, or an attribute), in task order."""
        by_task: dict[int, Any] = {}
        for rows, results in zip(self.rows, self._broadcast("call", (name, args))):
            by_task.update(zip(rows, results))
        return tuple(by_task[i] for i in sorted(by_task))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for conn in self.connections:  # all told first: a close cut short (a second Ctrl-C) still ends every worker
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for conn, process in zip(self.connections, self.processes):
            process.join(timeout=10)
            if process.is_alive():  # SIGKILL: SIGTERM is blocked in the workers
                process.kill()
            conn.close()
