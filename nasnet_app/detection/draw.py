"""Annotated images: each detection's box, name and score drawn onto a copy of the image."""

import numpy as np

PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
)  # fmt: skip


def annotate(image, detections):
    """A PIL RGB image: `image` (an `(H, W, 3)` array) with `detections` drawn on it."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    width = max(1, round(min(canvas.size) / 300))
    for box, class_id, name, score in zip(
        detections.boxes_pixels, detections.class_ids, detections.names, detections.scores
    ):
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        color = PALETTE[int(class_id) % len(PALETTE)]
        draw.rectangle([xmin, ymin, xmax, ymax], outline=color, width=width)
        label = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((xmin, ymin), label, font=font)
        top_edge = max(0.0, ymin - (bottom - top) - 2)
        draw.rectangle([xmin, top_edge, xmin + right - left + 4, top_edge + bottom - top + 2],
                       fill=color)  # fmt: skip
        draw.text((xmin + 2, top_edge), label, fill=(0, 0, 0), font=font)
    return canvas


def save_annotated(path, image, detections):
    """Writes the annotated image as a PNG, atomically."""
    from nasnet_app.io_utils import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        annotate(image, detections).save(tmp, format="PNG")
    return path
