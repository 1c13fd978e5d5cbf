"""Multi-view RGB → shape (WaLa-RGB4): one image per training view (the released model: views 3, 6,
10, 26 of the 55-view table). README: 5 steps, guidance 1.3. Trains on `wala prep --views` renders
that include its training views."""

from wala.conditions.images import image_condition, rgb_training_input

VIEWS = image_condition(
    views="several",
    name="views",
    flag="--views",
    aliases=("--multi_view_images",),
    steps=5,
    guidance=1.3,
    array="rgb",
    drawn_as="rgb",
    training_input=rgb_training_input,
    help="one RGB image per view the model reads, named by view id: 3.png 6.png 10.png 26.png",
)
