"""Model families: `text` (text.py); the interface is in base.py, detection in detect.py.

Importing this package does not import torch; base.py and the family modules do.
"""
