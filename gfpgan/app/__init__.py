"""A local web app for restoring photos (`python -m gfpgan.app`, needs `pip install -e .[app]`).

gradio is imported only by `gfpgan.app.ui`, so the core package never needs it: `cli` (command line
and launch), `service` (models loaded once, shared by requests), `uploads` (checks and limits),
`workspace` (the private temporary folder), `ui` (the page and the `/restore` API).
"""
