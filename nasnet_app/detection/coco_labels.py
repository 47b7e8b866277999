"""The COCO label map of the OD API: 90 category ids (1-based), 80 of them used.

The detector's class index `i` (0-based over its 90 foreground classes) is
COCO category id `i + 1`; the ids COCO leaves unused (12, 26, 29, 30, 45, 66,
68, 69, 71, 83) have no name and are reported as `unused_<id>`.

Example:

>>> from nasnet_app.detection.coco_labels import class_name, category_names
>>> class_name(1), class_name(90), class_name(12)
('person', 'toothbrush', 'unused_12')
>>> len(category_names())
80
"""

import functools
import json
import os

LABEL_MAP_FILE = os.path.join(os.path.dirname(__file__), "coco_label_map.json")
NUM_IDS = 90


@functools.cache
def category_names():
    """`{category id: name}` of the 80 used COCO categories."""
    with open(LABEL_MAP_FILE, encoding="utf-8") as handle:
        data = json.load(handle)
    return {int(entry["id"]): entry["name"] for entry in data["categories"]}


def class_name(category_id):
    """The name of a COCO category id (`unused_<id>` for the ten ids COCO does not use)."""
    if not 1 <= category_id <= NUM_IDS:
        raise ValueError(
            f"`category_id` must be in 1..{NUM_IDS}. Received: category_id={category_id!r}"
        )
    return category_names().get(category_id, f"unused_{category_id}")
