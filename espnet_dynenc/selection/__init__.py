"""Learning which units each subnet keeps (Dynamic Encoder Size, Step 1).

Both selectors hold one score per unit; every subnet size keeps the top-k units of the
same scores, so the subnets are nested by construction.
"""
from espnet_dynenc.selection.iterative_zero_out import IterativeZeroOut
from espnet_dynenc.selection.simple_topk import SimpleTopK

SELECTORS = {"simple_topk": SimpleTopK, "iterative_zero_out": IterativeZeroOut}
