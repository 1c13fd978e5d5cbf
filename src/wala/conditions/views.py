"""Multi-view RGB → shape (WaLa-RGB4): one image per training view (the released model: views 3, 6,
10, 26 of the 55-view table). README: 5 steps, guidance 1.3."""
from wala.conditions.images import image_condition

VIEWS = image_condition(views="several", name="views", flag="--views", aliases=("--multi_view_images",), steps=5, guidance=1.3,
                        help="one RGB image per view the model reads, named by view id: 3.png 6.png 10.png 26.png")
