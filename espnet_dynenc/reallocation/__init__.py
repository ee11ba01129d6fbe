"""DMAO: grow-and-drop parameter reallocation between the modules of the encoder.

Xu et al., "DMAO: Dynamic Model Architecture Optimization", Interspeech 2025,
arXiv 2506.13180. ``kinds`` holds the table of resizable unit kinds (which tensors
each groups, how each is rebuilt at a new width); ``groups`` defines the unit that
moves (hidden units, heads, conv channels) and regroups one module; ``rebuild`` applies
index lists to blocks and encoders; ``importance`` scores groups; ``reallocate`` plans
and applies one event.
"""
from espnet_dynenc.reallocation.groups import (  # noqa: F401
    gather_state,
    group_index_slices,
    group_parameter_cost,
    num_groups,
    regroup,
)
from espnet_dynenc.reallocation.importance import METHODS, ImportanceTracker, group_scores  # noqa: F401
from espnet_dynenc.reallocation.reallocate import (  # noqa: F401
    DropoutReference,
    ReallocationSummary,
    dropout_reference_from,
    plan_reallocation,
    reallocate,
    rescale_dropout,
)
from espnet_dynenc.reallocation.rebuild import (  # noqa: F401
    ModuleChange,
    apply_architecture,
    identity_index_lists,
    rebuild_block,
)
