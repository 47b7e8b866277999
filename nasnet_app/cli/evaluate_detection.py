"""`nasnet-app evaluate-detection`: COCO box AP of a detector on annotated images.

    nasnet-app evaluate-detection --annotations instances.json --images DIR
        (--preset NAME [--weights FILE] [--config JSON] | --model FILE) --out REPORT_DIR
        [--max-images N] [--score-threshold T]

Writes `REPORT_DIR/report.json` (the 12 COCO stats, per-class AP, pycocotools'
summary) and `REPORT_DIR/precision_recall.png`; prints the stats. Images the
annotations list but `--images` lacks are named before any work starts.
"""

import json

from nasnet_app.cli import _common
from nasnet_app.cli import detect as detect_command


def add_parser(subparsers):
    parser = _common.command_parser(
        subparsers,
        "evaluate-detection",
        help="COCO box AP of a detector on annotated images (pycocotools)",
    )
    parser.add_argument("--annotations", required=True, help="COCO instances JSON")
    parser.add_argument("--images", required=True, help="folder holding the images' file_name")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help=f"detection preset (e.g. {detect_command.DEFAULT_PRESET})")
    source.add_argument("--model", help="a .keras detector (from `zoo convert`)")
    parser.add_argument("--weights", help="OD API checkpoint, folder or .tar.gz for --preset")
    parser.add_argument("--config", help="JSON object (or file) overriding preset config fields")
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument(
        "--max-images", type=_common.positive_int, help="evaluate the first N images only"
    )
    parser.add_argument(
        "--score-threshold", type=_common.non_negative_float, default=0.0,
        help="drop detections below this score (default 0: all, as COCO evaluation expects)",
    )  # fmt: skip
    parser.set_defaults(run=run, tensorflow=True)


def run(args):
    from nasnet_app.classifier import load_image
    from nasnet_app.evaluate import coco

    _common.check_output_folder(args.out)
    config = detect_command.parse_config(args.config)
    ground_truth = coco.read_annotations(args.annotations)
    images, missing = coco.image_files(ground_truth, args.images)
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise _common.CommandFailed(
            f"{len(missing)} annotated images are not in {args.images}: "
            f"{', '.join(missing[:3])}{more}"
        )
    images = images[: args.max_images] if args.max_images else images
    if not images:
        raise _common.CommandFailed(f"{args.annotations} lists no images.")
    detector = detect_command.load_detector(args, config)
    result, unreadable = coco.evaluate_detector(
        detector, ground_truth, images, load_image, args.score_threshold
    )
    if result is None:
        raise _common.CommandFailed("no image could be read: " + "; ".join(unreadable))
    extra = {
        "annotations": args.annotations,
        "images": len(images) - len(unreadable),
        "model": args.model or args.preset,
    }
    coco.write_report(result, args.out, extra)
    print(json.dumps(result["stats"], indent=2))
    if unreadable:
        raise _common.CommandFailed(
            f"{len(unreadable)} of {len(images)} images unreadable: " + "; ".join(unreadable)
        )
    return 0
