"""One latency protocol for every runtime (Keras models, LiteRT interpreters).

Example:

>>> from nasnet_app.timing import time_per_batch
>>> sorted(time_per_batch(lambda x: x, lambda batch: [0] * batch, batch_sizes=(1,), repeats=2))
['batch_1']
"""

import time

import numpy as np


def time_per_batch(run, make_input, batch_sizes=(1, 32), warmup=2, repeats=10):
    """Median wall time of `run(make_input(batch))` in milliseconds, per batch size.

    The first `warmup` calls (tracing, allocation) are not timed; `run` must
    return only once its result is ready.

    Returns:
        `{"batch_1": {"ms_per_image": ..., "ms_per_batch": ..., "repeats": ...}, ...}`.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be a positive integer. Received: repeats={repeats!r}")
    results = {}
    for batch in batch_sizes:
        inputs = make_input(batch)
        for _ in range(warmup):
            run(inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(inputs)
            times.append(time.perf_counter() - start)
        per_batch = float(np.median(times)) * 1000.0
        results[f"batch_{batch}"] = {
            "ms_per_image": per_batch / batch,
            "ms_per_batch": per_batch,
            "repeats": repeats,
        }
    return results
