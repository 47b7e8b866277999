"""Executors: they run evaluations and hand finished trials back to the search.

An executor only moves `Trial`s between `CellSearch` and an `Evaluator`. The
search submits `(ticket, trial)` pairs and collects finished ones as they
complete; the ticket is the search's own id for the proposal (a trial gets its
`trial_id` only when it is written to the run log, in finishing order).

* `InProcessExecutor`: one child at a time, in the search's own process.
* `LocalProcessExecutor`: several children at once, each in a worker
  process with its own device group (GPUs or CPU threads).
* `RayExecutor`: each child a Ray task with its resource needs, on a local
  Ray instance or a cluster (optional extra `nasnet-app[distributed]`).

Every executor turns any failure of a child (an exception, a NaN reward, an
out-of-memory error) into a `failed` trial with its error; it never raises
for a child.

Example:

>>> from nasnet_app.search.base import Evaluator, Trial
>>> class Length(Evaluator):
...     def evaluate(self, architecture, *, trial, train_data=None, validation_data=None):
...         return {"reward": float(len(architecture))}
>>> executor = InProcessExecutor()
>>> executor.start(Length())
>>> executor.submit(7, Trial(trial_id=-1, actions=[0], architecture="abc", arch_key="abc"))
>>> [(ticket, trial.reward) for ticket, trial in executor.collect()]
[(7, 3.0)]
"""

import collections
import dataclasses
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import subprocess
import threading
import time
import traceback

MAX_ERROR_CHARS = 4000


class ChildFailure(RuntimeError):
    """A child that finished without a usable reward (NaN loss, NaN reward)."""


def describe_error(error):
    """A one-paragraph description of a child's error, marking out-of-memory errors."""
    name = type(error).__name__
    message = str(error).strip() or repr(error)
    if name == "ResourceExhaustedError" or isinstance(error, MemoryError):
        name = f"{name} (out of memory)"
    text = f"{name}: {message}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _check_result(result):
    """The `(reward, metrics)` of an evaluator's result dict; raises on a bad one."""
    if not isinstance(result, dict) or "reward" not in result:
        raise TypeError(
            "An evaluator must return a dict with a `reward`. "
            f"Received: {type(result).__name__} {result!r:.200}"
        )
    try:
        reward = float(result["reward"])
    except (TypeError, ValueError):
        raise TypeError(
            f"The evaluator's `reward` must be a number. Received: reward={result['reward']!r}"
        ) from None
    if not math.isfinite(reward):
        raise ChildFailure(f"The child's reward is not finite (reward={reward}).")
    metrics = result.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise TypeError(f"The evaluator's `metrics` must be a dict. Received: {metrics!r:.200}")
    return reward, metrics


def evaluate_trial(evaluator, trial, train_data=None, validation_data=None):
    """Evaluates one trial; returns a finished copy (`completed` or `failed`).

    Args:
        evaluator: an `Evaluator`.
        trial: the pending `Trial`.
        train_data, validation_data: passed on to `evaluator.evaluate`.
    """
    trial = dataclasses.replace(trial, status="running", start_time=time.time())
    try:
        result = evaluator.evaluate(
            trial.architecture,
            trial=trial,
            train_data=train_data,
            validation_data=validation_data,
        )
        reward, metrics = _check_result(result)
    except Exception as error:  # any child failure is recorded; the search goes on
        return mark_failed(trial, describe_error(error), traceback.format_exc(limit=8))
    trial.status, trial.reward, trial.metrics = "completed", reward, dict(metrics)
    trial.end_time = time.time()
    return trial


def mark_failed(trial, error, details=None):
    """`trial` as a failed trial with `error` (and an optional traceback in metrics)."""
    trial = dataclasses.replace(trial, status="failed", reward=None, error=error)
    if details:
        trial.metrics = {**trial.metrics, "traceback": details[-MAX_ERROR_CHARS:]}
    trial.end_time = time.time()
    return trial


class Executor:
    """Runs trials for `CellSearch`: submit pending ones, collect finished ones.

    Subclasses implement `submit` and `collect`; `capacity`
    is how many children run at the same time.
    """

    capacity = 1

    def start(self, evaluator, train_data=None, validation_data=None):
        """Called once before the first `submit` of a search."""
        self.evaluator = evaluator
        self.train_data = train_data
        self.validation_data = validation_data

    def submit(self, ticket, trial):
        """Queues `trial` under `ticket`; returns at once."""
        raise NotImplementedError

    def collect(self, timeout=None):
        """Waits until at least one trial finished (or `timeout` seconds passed);
        returns a list of `(ticket, finished_trial)`."""
        raise NotImplementedError

    def cancel_queued(self):
        """Drops the trials that have not started; returns their tickets.

        The executors here keep waiting `(ticket, trial)` pairs in `self._queue`.
        """
        tickets = [ticket for ticket, _ in self._queue]
        self._queue.clear()
        return tickets

    @property
    def num_pending(self):
        """Trials submitted and not collected yet."""
        raise NotImplementedError

    def shutdown(self):
        """Stops any workers; pending trials are abandoned."""

    def get_config(self):
        return {"executor": type(self).__name__, "capacity": self.capacity}


class InProcessExecutor(Executor):
    """Evaluates one trial at a time, in the calling process, when collected.

    Example:

    >>> executor = InProcessExecutor()
    >>> executor.capacity
    1
    """

    capacity = 1

    def __init__(self):
        self._queue = collections.deque()

    def submit(self, ticket, trial):
        self._queue.append((ticket, trial))

    def collect(self, timeout=None):
        if not self._queue:
            return []
        ticket, trial = self._queue.popleft()
        finished = evaluate_trial(self.evaluator, trial, self.train_data, self.validation_data)
        return [(ticket, finished)]

    @property
    def num_pending(self):
        return len(self._queue)

    def shutdown(self):
        self._queue.clear()


# --------------------------------------------------------------------------- local processes

_ENV_LOCK = threading.Lock()


def _configure_threads(threads):
    """Caps TensorFlow's thread pools in a worker before it runs anything."""
    if not threads:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))


def _worker_main(connection, payload, threads):
    """Loop of a worker process: announce `READY`, then receive `(ticket, trial)`
    and send `(ticket, finished_trial)` until told to stop."""
    _configure_threads(threads)
    evaluator, train_data, validation_data = pickle.loads(payload)
    connection.send(READY)
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return  # the search went away
        if message is None:
            return
        ticket, trial = message
        connection.send((ticket, evaluate_trial(evaluator, trial, train_data, validation_data)))


READY = "ready"


def _exit_description(exitcode):
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _pickled(evaluator, train_data, validation_data, executor_name):
    try:
        return pickle.dumps((evaluator, train_data, validation_data))
    except Exception as error:
        raise TypeError(
            f"{executor_name} sends the evaluator and the data to other processes, so they must "
            "be picklable: pass data as arrays, a folder path or a module-level function "
            f"returning a dataset. Pickling failed with {type(error).__name__}: {error}"
        ) from None


class _Worker:
    """One worker process with its device group; runs one child at a time."""

    def __init__(self, slot, context, payload, env, threads):
        self.slot = slot
        parent, child = context.Pipe()
        self.connection = parent
        self.process = context.Process(
            target=_worker_main,
            args=(child, payload, threads),
            daemon=True,
            name=f"nasnet-app-child-worker-{slot}",
        )
        with _ENV_LOCK:  # spawn copies os.environ: set the device group only around start()
            saved = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            try:
                self.process.start()
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        child.close()
        self.ready = False  # set when the worker has loaded the evaluator and data
        self.job = None  # (ticket, trial, start time)
        self.children = 0

    @property
    def idle(self):
        return self.ready and self.job is None

    def run(self, ticket, trial):
        self.job = (ticket, trial, time.time())
        self.connection.send((ticket, trial))

    def stop(self, timeout=5.0):
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.connection.close()


class LocalProcessExecutor(Executor):
    """Runs children in worker processes on this machine, several at once.

    Each worker owns a device group: `gpus_per_child` GPUs (through
    `CUDA_VISIBLE_DEVICES`, so a `MirroredStrategy` in the child spans exactly
    its group), or on a CPU-only machine `threads_per_child` CPU threads. A
    worker that crashes, is killed or runs out of memory fails only its own
    trial; a fresh worker takes the next child. Workers are also replaced
    after a failed child (an aborted collective or an OOM can leave
    TensorFlow unusable) and after `max_children_per_worker` children, which
    keeps memory flat (TensorFlow keeps some state of every traced child).

    Args:
        workers: children trained at the same time.
        gpus_per_child: GPUs per worker (`None`: 1 when GPUs are visible, else 0).
        threads_per_child: TensorFlow threads per worker (`None`: the CPU
            count divided by `workers` on CPU-only machines).
        max_children_per_worker: replace a worker after this many children
            (`None`: never).
        child_timeout: seconds a child may run (from the moment its worker
            starts it) before it is killed and failed (`None`: no limit).
        gpu_ids: the GPUs to share out, as `CUDA_VISIBLE_DEVICES` entries
            (default: every visible GPU).

    Example:

    >>> executor = LocalProcessExecutor(workers=2, gpus_per_child=0, threads_per_child=1)
    >>> executor.capacity
    2
    """

    def __init__(
        self,
        workers=2,
        gpus_per_child=None,
        threads_per_child=None,
        max_children_per_worker=None,
        child_timeout=None,
        gpu_ids=None,
    ):
        self.capacity = _check_count("workers", workers, minimum=1)
        self.gpus_per_child = _check_count("gpus_per_child", gpus_per_child, 0, allow_none=True)
        self.threads_per_child = _check_count("threads_per_child", threads_per_child, 1, True)
        self.max_children_per_worker = _check_count(
            "max_children_per_worker", max_children_per_worker, 1, allow_none=True
        )
        if child_timeout is not None and not (
            isinstance(child_timeout, (int, float)) and child_timeout > 0
        ):
            raise ValueError(
                f"`child_timeout` must be None or a positive number. Received: {child_timeout!r}"
            )
        self.child_timeout = child_timeout
        self.gpu_ids = None if gpu_ids is None else [str(i) for i in gpu_ids]
        self._queue = collections.deque()
        self._workers = {}
        self._finished = []
        self.worker_pids = []  # every worker process started, in order

    def get_config(self):
        return {
            **super().get_config(),
            "gpus_per_child": self.gpus_per_child,
            "threads_per_child": self.threads_per_child,
            "max_children_per_worker": self.max_children_per_worker,
        }

    def start(self, evaluator, train_data=None, validation_data=None):
        super().start(evaluator, train_data, validation_data)
        self._payload = _pickled(evaluator, train_data, validation_data, type(self).__name__)
        self._context = multiprocessing.get_context("spawn")
        self._groups = self.device_groups()

    def device_groups(self):
        """Per worker slot: `(environment, threads)`; the environment holds its
        `CUDA_VISIBLE_DEVICES` and thread caps."""
        gpus = self.gpu_ids if self.gpu_ids is not None else _visible_gpu_ids()
        per_child = self.gpus_per_child
        if per_child is None:
            per_child = 1 if gpus else 0
        if per_child * self.capacity > len(gpus):
            raise ValueError(
                f"`workers` x `gpus_per_child` must be at most the {len(gpus)} GPUs available "
                f"({gpus}). Received: workers={self.capacity}, gpus_per_child={per_child}"
            )
        threads = self.threads_per_child
        if threads is None and per_child == 0:
            threads = max(1, (os.cpu_count() or 1) // self.capacity)
        groups = []
        for slot in range(self.capacity):
            env = {}
            if per_child or gpus:
                ids = gpus[slot * per_child : (slot + 1) * per_child]
                env["CUDA_VISIBLE_DEVICES"] = ",".join(ids) or "-1"
            if threads:
                env.update(
                    OMP_NUM_THREADS=str(threads),
                    TF_NUM_INTRAOP_THREADS=str(threads),
                    TF_NUM_INTEROP_THREADS=str(max(1, min(2, threads))),
                )
            groups.append((env, threads))
        return groups

    def submit(self, ticket, trial):
        self._queue.append((ticket, trial))

    def _dispatch(self):
        """Starts workers for empty slots and hands queued trials to idle ones."""
        for slot in range(self.capacity):
            if not self._queue:
                return
            worker = self._workers.get(slot)
            if worker is None:
                env, threads = self._groups[slot]
                worker = _Worker(slot, self._context, self._payload, env, threads)
                self._workers[slot] = worker
                self.worker_pids.append(worker.process.pid)
            if worker.idle:
                worker.run(*self._queue.popleft())

    def _retire(self, worker):
        self._workers.pop(worker.slot, None)
        worker.stop()

    def _receive(self, worker):
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):
            self._worker_died(worker)
            return
        if message == READY:
            worker.ready = True
            return
        ticket, finished = message
        worker.job = None
        worker.children += 1
        self._finished.append((ticket, finished))
        limit = self.max_children_per_worker
        if finished.status == "failed" or (limit and worker.children >= limit):
            self._retire(worker)

    def _worker_died(self, worker, reason=None):
        worker.process.join(1.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5.0)
        if reason is None:
            reason = f"its process died ({_exit_description(worker.process.exitcode)})"
        if worker.job is not None:
            ticket, trial, _ = worker.job
            self._finished.append((ticket, mark_failed(trial, f"WorkerDied: {reason}")))
        elif not worker.ready and self._queue:
            # A worker that cannot even start (bad evaluator or data) would fail
            # forever: fail the next child with the reason instead of looping.
            ticket, trial = self._queue.popleft()
            message = f"WorkerDied: the worker process could not start ({reason})"
            self._finished.append((ticket, mark_failed(trial, message)))
        self._workers.pop(worker.slot, None)
        worker.connection.close()

    def _check_timeouts(self):
        if self.child_timeout is None:
            return
        now = time.time()
        for worker in list(self._workers.values()):
            if worker.job is not None and now - worker.job[2] > self.child_timeout:
                worker.process.kill()
                self._worker_died(worker, f"the child ran longer than {self.child_timeout} s")

    def _wait(self, seconds):
        handles = {}
        for worker in self._workers.values():
            if worker.job is not None or not worker.ready:
                handles[worker.connection] = worker
                handles[worker.process.sentinel] = worker
        if not handles:
            return False
        for handle in multiprocessing.connection.wait(list(handles), timeout=seconds):
            worker = handles[handle]
            if self._workers.get(worker.slot) is not worker:
                continue  # already handled through its other handle
            if worker.connection.poll():
                self._receive(worker)
            else:
                self._worker_died(worker)
        self._check_timeouts()
        return True

    def collect(self, timeout=None):
        deadline = None if timeout is None else time.time() + timeout
        while not self._finished:
            self._dispatch()
            remaining = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.time()))
            if not self._wait(remaining):
                break
            if deadline is not None and time.time() >= deadline:
                break
        self._dispatch()
        finished, self._finished = self._finished, []
        return finished

    @property
    def num_pending(self):
        running = sum(w.job is not None for w in self._workers.values())
        return len(self._queue) + running + len(self._finished)

    def shutdown(self):
        self._queue.clear()
        for worker in list(self._workers.values()):
            if worker.job is not None:
                worker.process.kill()
            worker.stop(timeout=10.0)
        self._workers.clear()


def _check_count(name, value, minimum=0, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        suffix = " or None" if allow_none else ""
        raise ValueError(f"`{name}` must be an integer >= {minimum}{suffix}. Received: {value!r}")
    return value


def _visible_gpu_ids():
    """Indices of the GPUs this process may use, without initialising TensorFlow."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [i.strip() for i in visible.split(",") if i.strip() and i.strip() != "-1"]
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in output.split() if line.strip().isdigit()]


# --------------------------------------------------------------------------- Ray


def _ray_evaluate(payload, trial):
    """The Ray task: evaluates one trial in a Ray worker."""
    evaluator, train_data, validation_data = payload
    return evaluate_trial(evaluator, trial, train_data, validation_data)


def import_ray():
    """`ray`, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            "RayExecutor needs Ray: pip install 'nasnet-app[distributed]' (or pip install ray)."
        ) from None
    return ray


class RayExecutor(Executor):
    """Runs each child as a Ray task with its resource needs (e.g. 1 GPU).

    Connects to `address` (an existing cluster) or starts a local Ray
    instance, which `shutdown` stops again. When a worker dies in the middle
    of a child, Ray runs the task again (`max_retries` times); after that the
    trial is recorded as failed. The search receives exactly one result per
    trial either way.

    Args:
        address: a Ray cluster address (`"auto"`, `"ray://host:10001"`);
            `None` starts a local instance.
        workers: children in flight at once (default: the cluster's CPUs
            divided by `cpus_per_child`, or its GPUs by `gpus_per_child`).
        cpus_per_child, gpus_per_child: the resources of each child's task.
        max_retries: re-runs of a child whose worker died.
        num_cpus: CPUs of a local instance (default: all).
        init_kwargs: more keyword arguments for `ray.init`.

    Example:

    >>> executor = RayExecutor(workers=2, cpus_per_child=1)  # doctest: +SKIP
    >>> executor.capacity  # doctest: +SKIP
    2
    """

    def __init__(
        self,
        address=None,
        workers=None,
        cpus_per_child=1,
        gpus_per_child=0,
        max_retries=1,
        num_cpus=None,
        init_kwargs=None,
    ):
        self.address = address
        self.workers = _check_count("workers", workers, 1, allow_none=True)
        if not isinstance(cpus_per_child, (int, float)) or cpus_per_child <= 0:
            raise ValueError(
                f"`cpus_per_child` must be a positive number. Received: {cpus_per_child!r}"
            )
        if not isinstance(gpus_per_child, (int, float)) or gpus_per_child < 0:
            raise ValueError(
                f"`gpus_per_child` must be a number >= 0. Received: {gpus_per_child!r}"
            )
        self.cpus_per_child, self.gpus_per_child = cpus_per_child, gpus_per_child
        self.max_retries = _check_count("max_retries", max_retries, 0)
        self.num_cpus = _check_count("num_cpus", num_cpus, 1, allow_none=True)
        self.init_kwargs = dict(init_kwargs or {})
        self.capacity = self.workers or 1
        self._queue = collections.deque()
        self._running = {}  # ObjectRef -> (ticket, trial)
        self._started_ray = False

    def get_config(self):
        return {
            **super().get_config(),
            "address": self.address,
            "cpus_per_child": self.cpus_per_child,
            "gpus_per_child": self.gpus_per_child,
            "max_retries": self.max_retries,
        }

    def start(self, evaluator, train_data=None, validation_data=None):
        super().start(evaluator, train_data, validation_data)
        ray = import_ray()
        payload = _pickled(evaluator, train_data, validation_data, type(self).__name__)
        if not ray.is_initialized():
            kwargs = {"address": self.address, "include_dashboard": False, **self.init_kwargs}
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
            self._started_ray = True
        self._ray = ray
        self._payload_ref = ray.put(pickle.loads(payload))
        self._task = ray.remote(
            num_cpus=self.cpus_per_child,
            num_gpus=self.gpus_per_child,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )(_ray_evaluate)
        if self.workers is None:
            self.capacity = self._cluster_capacity()

    def _cluster_capacity(self):
        resources = self._ray.cluster_resources()
        slots = int(resources.get("CPU", 1) // self.cpus_per_child)
        if self.gpus_per_child:
            slots = min(slots, int(resources.get("GPU", 0) // self.gpus_per_child))
        if slots < 1:
            raise ValueError(
                f"The Ray cluster ({resources}) cannot fit one child needing "
                f"{self.cpus_per_child} CPUs and {self.gpus_per_child} GPUs."
            )
        return slots

    def submit(self, ticket, trial):
        self._queue.append((ticket, trial))

    def _dispatch(self):
        while self._queue and len(self._running) < self.capacity:
            ticket, trial = self._queue.popleft()
            self._running[self._task.remote(self._payload_ref, trial)] = (ticket, trial)

    def collect(self, timeout=None):
        self._dispatch()
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        finished = []
        for ref in ready:
            ticket, trial = self._running.pop(ref)
            try:
                finished.append((ticket, self._ray.get(ref)))
            except Exception as error:  # the worker died beyond max_retries, or Ray failed
                reason = f"Ray could not finish this child after {self.max_retries} retries"
                finished.append((ticket, mark_failed(trial, f"{reason}: {describe_error(error)}")))
        self._dispatch()
        return finished

    @property
    def num_pending(self):
        return len(self._queue) + len(self._running)

    def shutdown(self):
        self._queue.clear()
        if getattr(self, "_ray", None) is None:
            return
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
