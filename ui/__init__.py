"""The web app's tabs: each binds its controls to segkit's public functions (app.py assembles them)."""
