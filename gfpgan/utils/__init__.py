"""Framework utilities: registries, options, logging, distributed helpers, image and checkpoint I/O.

Only torch, numpy, cv2 and yaml are imported here, so every other layer may depend on this one.
"""
