"""DMAO: grow-and-drop parameter reallocation between the modules of the encoder.

Xu et al., "DMAO: Dynamic Model Architecture Optimization", Interspeech 2025,
arXiv 2506.13180. ``groups`` defines the unit that moves (hidden units, heads, conv
channels) and rebuilds modules from index lists; ``importance`` scores groups;
``reallocate`` plans and applies one event.
"""
from espnet_dynenc.reallocation.groups import (  # noqa: F401
    ModuleChange,
    apply_architecture,
    gather_state,
    group_index_slices,
    group_parameter_cost,
    identity_index_lists,
    num_groups,
    rebuild_block,
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
