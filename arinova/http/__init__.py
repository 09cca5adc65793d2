"""The REST layer: a BlackSheep application (``app.py``) whose areas each own their
routes, one module per area."""
