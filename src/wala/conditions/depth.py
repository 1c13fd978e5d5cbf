"""Depth maps → shape (WaLa-DM1/DM4/DM6): 1, 4 or 6 8-bit depth images (nearer brighter, background 0),
as many as the model was trained on. README: 1 map 5 steps/1.8, 4 maps 5/1.3, 6 maps 10/1.5.
Trains on `wala prep --views` depth maps (wala.render.views' encoding): one random view per sample
for one map, the model's training views for several."""

from wala.conditions.images import gray_training_input, image_condition

DEPTH = image_condition(
    views="either",
    name="depth",
    flag="--depth",
    aliases=("--dm1", "--dm4", "--dm6"),
    steps=5,
    guidance=1.8,
    per_files=((1, 5, 1.8), (4, 5, 1.3), (6, 10, 1.5)),
    array="depth",
    drawn_as="depth",
    training_input=gray_training_input,
    help="1, 4 or 6 8-bit depth PNGs (as the model reads), several named by view id: 3.png 6.png …",
)
