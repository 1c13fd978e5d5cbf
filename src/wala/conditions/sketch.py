"""Sketch → shape (WaLa-SK): one line drawing, read exactly like a single-view image (the released
sketch and single-view checkpoints have the same args; only their training data differs).
README: 5 steps, guidance 1.8."""
from wala.conditions.images import image_condition

SKETCH = image_condition(views="one", name="sketch", flag="--sketch", steps=5, guidance=1.8,
                         help="a line drawing (PNG/JPEG…)")
