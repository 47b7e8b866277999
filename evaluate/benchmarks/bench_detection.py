"""Benchmark: Faster R-CNN NASNet-A (full width, 500 proposals) per image, time and peak memory.

Each image size runs in its own process (so each peak is its own): it builds
the full-width detector (random weights: the time does not depend on them),
then times each stage of one image (first stage, first-stage NMS, second stage
in chunks, second-stage NMS) over `--repeats` runs (eager execution: nothing is
traced, so the first run is not special) and reports the median, the resident memory after the build (the weights) and the peak
resident memory of the process (`ru_maxrss`).

    nice -n 5 .venv/bin/python evaluate/benchmarks/bench_detection.py \
        [--sizes 800 1200] [--chunk 50] [--proposals 500] [--repeats 1] [--out FILE.json]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

STAGES = ("first_stage", "proposals", "second_stage", "postprocess")


def _rss_mib():
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _time_stages(detector, image):
    times = {}
    start = time.perf_counter()
    first = detector.first_stage(detector.preprocess(image))
    features = first["rpn_features_to_crop"].numpy()  # wait for the work, not just its launch
    times["first_stage"] = time.perf_counter() - start
    start = time.perf_counter()
    boxes, _ = detector.proposals(
        first["rpn_box_encodings"][0],
        first["rpn_objectness_predictions_with_background"][0],
        first["anchors"],
    )
    times["proposals"] = time.perf_counter() - start
    start = time.perf_counter()
    encodings, logits = detector.second_stage(features, detector.normalize(boxes))
    times["second_stage"] = time.perf_counter() - start
    start = time.perf_counter()
    found = detector.postprocess(encodings, logits, boxes)
    times["postprocess"] = time.perf_counter() - start
    return times, len(boxes), len(found.scores)


def run_one(size, chunk, proposals, repeats):
    """Measures one image size in this process; returns a result dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from nasnet_app.detection import NASNetFasterRCNN

    start = time.perf_counter()
    config = {"image_size": size, "first_stage_max_proposals": proposals}
    detector = NASNetFasterRCNN(config, second_stage_chunk_size=chunk)
    build_s = time.perf_counter() - start
    rss_after_build = _rss_mib()
    image = np.random.RandomState(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    runs = [_time_stages(detector, image) for _ in range(repeats)]
    stage_times = {s: statistics.median(r[0][s] for r in runs) for s in STAGES}
    return {
        "image_size": size,
        "parameters": detector.count_params(),
        "second_stage_chunk_size": chunk,
        "proposals": runs[-1][1],
        "detections": runs[-1][2],
        "build_s": round(build_s, 1),
        "seconds_per_image": round(sum(stage_times.values()), 1),
        "stage_seconds": {s: round(t, 2) for s, t in stage_times.items()},
        "rss_after_build_mib": round(rss_after_build),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "repeats": repeats,
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[800, 1200])
    parser.add_argument("--chunk", type=int, default=50, help="second-stage proposals per call")
    parser.add_argument("--proposals", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per size")
    parser.add_argument("--out", help="also write the results to this JSON file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.chunk, args.proposals, args.repeats)))
        return 0
    machine = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 1),
    }
    results = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--one", str(size), "--chunk", str(args.chunk),
                   "--proposals", str(args.proposals), "--repeats", str(args.repeats)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"size {size} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"\n{machine['machine']}, {machine['cores']} cores; full width, random weights")
    print("| size | s / image | first stage | second stage | peak RSS | weights RSS |")
    print("|---|---|---|---|---|---|")
    for r in results:
        s = r["stage_seconds"]
        print(f"| {r['image_size']} | {r['seconds_per_image']} | {s['first_stage']} | "
              f"{s['second_stage']} | {r['peak_rss_mib'] / 1024:.1f} GiB | "
              f"{r['rss_after_build_mib'] / 1024:.1f} GiB |")  # fmt: skip
    if args.out:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        from nasnet_app.io_utils import atomic_write_json

        atomic_write_json(args.out, {**machine, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
