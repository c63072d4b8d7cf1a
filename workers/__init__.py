"""RQ jobs and the worker entry point.

Jobs take ids and primitives, reload what they need, and are safe to run twice.
They run inside the app context that ``flask worker`` pushes.
"""
