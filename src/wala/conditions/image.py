"""Single-view image → shape (WaLa-SV): one RGB photo or render. README: 5 steps, guidance 1.8."""
from wala.conditions.images import image_condition

IMAGE = image_condition(views="one", name="image", flag="--image", aliases=("--images",), steps=5, guidance=1.8,
                        help="a photo or render: PNG (alpha dropped unless --composite-alpha), JPEG, WebP…")
