"""The local web page (`wala serve`): FastAPI routes in `app.py`, the page and its WebGL viewer in `static/`."""
