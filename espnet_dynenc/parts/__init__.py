"""Conformer building blocks, each usable and testable on its own.

Every part keeps the parameter names of its ESPnet counterpart, so stock ESPnet
Conformer weights load into it, and takes its width (hidden units, heads, channels)
as an argument, so blocks of one encoder may differ in size.
"""
