"""The fastnst browser demo (Gradio). ``python app.py`` starts it; see README, "Demo".

Importing this package does not import Gradio: :mod:`demo.service` is usable on its own.
"""
