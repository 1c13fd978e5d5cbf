"""Single-view image → shape (WaLa-SV): one RGB photo or render. README: 5 steps, guidance 1.8.
Trains on `wala prep --views` renders, a random view per sample and step."""

from wala.conditions.images import image_condition, rgb_training_input

IMAGE = image_condition(
    views="one",
    name="image",
    flag="--image",
    aliases=("--images",),
    steps=5,
    guidance=1.8,
    array="rgb",
    official_twin="sketch",
    training_input=rgb_training_input,
    help="a photo or render: PNG (alpha dropped unless --composite-alpha), JPEG, WebP…",
)
