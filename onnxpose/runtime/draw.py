"""Draw poses on an image: the skeleton as lines, keypoints as dots, one colour per pose."""

from __future__ import annotations

from PIL import Image, ImageDraw

from onnxpose.keypoints import SKELETON

POSE_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


def draw_poses(image: Image.Image, result, min_score: float = 0.2) -> Image.Image:
    """A copy of ``image`` with every pose of ``result`` drawn (keypoints above ``min_score``,
    and its box when the model outputs boxes)."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    radius = max(2, round(max(canvas.size) / 160))
    for index, keypoints in enumerate(result.keypoints):
        colour = POSE_COLOURS[index % len(POSE_COLOURS)]
        box = None if result.boxes is None else result.boxes[index]
        if box is not None and box[4] > 0 and box[2] >= box[0] and box[3] >= box[1]:
            ymin, xmin, ymax, xmax = (float(v) for v in box[:4])
            draw.rectangle([xmin, ymin, xmax, ymax], outline=colour, width=max(1, radius // 2))
        for a, b in SKELETON:
            (ya, xa, sa), (yb, xb, sb) = keypoints[a], keypoints[b]
            if sa >= min_score and sb >= min_score:
                draw.line([(xa, ya), (xb, yb)], fill=colour, width=max(1, radius // 2 + 1))
        for y, x, score in keypoints:
            if score >= min_score:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour,
                             outline=(255, 255, 255))
    return canvas
