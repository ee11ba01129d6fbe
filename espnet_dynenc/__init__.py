"""espnet_dynenc: one Conformer-CTC supernet, encoders of several sizes, inside ESPnet.

Importing the package registers encoder ``dynamic_conformer`` and model ``supernet_ctc``
with ESPnet's ASR task (at once if it is loaded, else when it is imported).
"""
from espnet_dynenc.registration import register as _register

_register()
