"""What names a model to start from, without loading one: ESPnet's ``--init_param`` value
(:class:`InitParam`) and the files ``espnet_dynenc.bin.init_supernet`` writes.

No torch and no ESPnet here, so that what only reads these names (the comparison's cost,
which follows a fine-tuned run back to its pre-training) does not load a model's modules.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

OPTION = "--pretrained_model"
# what espnet_dynenc.pretrained.convert writes into its output folder
MODEL_FILE = "model.pth"
INFO_FILE = "init.yaml"  # where the converted model came from (its "source": asr_train_config, ...)


@dataclass(frozen=True)
class InitParam:
    """One ``--init_param`` value, split as ESPnet splits it."""

    path: str
    src_key: Optional[str] = None
    dst_key: Optional[str] = None
    excludes: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str, option: str = OPTION) -> "InitParam":
        parts = spec.split(":")
        if len(parts) > 4 or not parts[0]:
            raise ValueError(f"{option} '{spec}': expected path[:src_key:dst_key:excluded] (excluded: prefixes, "
                             "comma-separated), e.g. exp/asr/valid.acc.ave.pth or exp/asr/valid.acc.ave.pth:::decoder")
        path, src_key, dst_key = (parts + ["", ""])[:3]
        excludes = tuple(parts[3].split(",")) if len(parts) == 4 else ()
        return cls(path, src_key or None, dst_key or None, excludes)

    def spec(self) -> str:
        """Back to ESPnet's form."""
        if self.excludes:
            return ":".join([self.path, self.src_key or "", self.dst_key or "", ",".join(self.excludes)])
        parts = [self.path, self.src_key or "", self.dst_key or ""]
        while len(parts) > 1 and not parts[-1]:
            parts.pop()
        return ":".join(parts)

    def excluding(self, prefix: str) -> "InitParam":
        """The same spec with one more excluded prefix (what a message suggests)."""
        return InitParam(self.path, self.src_key, self.dst_key, tuple(e for e in self.excludes if e) + (prefix,))

    def selected(self, state: Dict[str, object]) -> Dict[str, object]:
        """The checkpoint's entries ESPnet loads, under their names in the new model."""
        kept = {k: v for k, v in state.items() if not any(k.startswith(prefix) for prefix in self.excludes)}
        if self.src_key is not None:
            kept = {k[len(self.src_key) + 1:]: v for k, v in kept.items() if k.startswith(self.src_key)}
        prefix = f"{self.dst_key}." if self.dst_key is not None else ""
        return {prefix + k: v for k, v in kept.items()}
