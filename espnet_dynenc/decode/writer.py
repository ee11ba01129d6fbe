"""ESPnet's decoding output files of one target, written when the whole set is decoded.

Both decoders (greedy and beam) end the same way: each target's files, then its
``decode_stats.yaml`` with what was decoded, how fast and at what cost (parameters,
FLOPs per second of audio), through :meth:`SubnetWriter.finish`.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from espnet_dynenc.analysis.complexity import SubnetComplexity, model_complexity, subnet_complexity
from espnet_dynenc.atomic_files import write_lines_atomically, write_text_atomically
from espnet_dynenc.decode.outputs import LINE_FILES, STATS_FILE
from espnet_dynenc.decode.targets import DecodeTarget
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel


@dataclass
class DecodingPass:
    """What every target of one pass over the data shares: the model decoded, the data
    (utterances, seconds of audio at ``fs``), the time spent on work every target needs
    (the greedy decoder's shared frontend), and the checkpoint the parameters came from.
    Complexities are counted once per encoder configuration (targets may share one)."""

    model: object
    fs: int
    flops_reference_seconds: float
    num_utterances: int
    audio_seconds: float
    shared_seconds: float = 0.0
    checkpoint: Optional[str] = None
    _complexities: Dict[Tuple[int, Tuple[int, ...]], SubnetComplexity] = field(default_factory=dict, repr=False)

    def complexity(self, target: DecodeTarget) -> SubnetComplexity:
        """Parameters and FLOPs per second of audio of ``target``'s encoder (a one-size
        model: the whole model)."""
        key = (target.size, target.skip_blocks)
        if key not in self._complexities:
            if isinstance(self.model, ESPnetSupernetCTCModel):
                found = subnet_complexity(self.model, target.size, self.flops_reference_seconds, self.fs,
                                          target.skip_blocks)
            else:
                found = model_complexity(self.model, self.flops_reference_seconds, self.fs)
            self._complexities[key] = found
        return self._complexities[key]


class SubnetWriter:
    """Collects one target's results and writes them atomically at the end.

    ``decode_stats.yaml`` is written last, so its presence marks a finished target: a
    stage that is interrupted and rerun never mistakes half an output for a whole one.
    """

    def __init__(self, target: DecodeTarget, out_root: Path):
        self.target = target
        self.out_dir = Path(out_root) / target.out_dir
        self.lines: Dict[str, List[str]] = {name: [] for name in LINE_FILES}
        self.seconds = 0.0  # this target's own decoding time

    def add(self, key: str, token_ids: Sequence[int], tokens: Sequence[str], text: str, score: float) -> None:
        self.lines["token_int"].append(f"{key} {' '.join(map(str, token_ids))}".rstrip())
        self.lines["token"].append(f"{key} {' '.join(tokens)}".rstrip())
        self.lines["text"].append(f"{key} {text}".rstrip())
        self.lines["score"].append(f"{key} {score:.4f}")

    def finish(self, done: DecodingPass, settings: Mapping[str, object] = ()) -> dict:
        """Write the files and the target's decode_stats: what it is, ``settings`` (how the
        decoder searched), the pass's totals, its RTF (the shared time plus its own) and its
        complexity. Returns the stats."""
        target = self.target
        decode_seconds = done.shared_seconds + self.seconds
        audio_seconds = done.audio_seconds
        complexity = done.complexity(target)
        stats = {
            "subnet": target.size,
            **dict(target.labels),
            "skip_blocks": list(target.skip_blocks),
            **({"checkpoint": done.checkpoint} if done.checkpoint else {}),
            **dict(settings),
            "num_utterances": done.num_utterances,
            "audio_seconds": round(audio_seconds, 3),
            "decode_seconds": round(decode_seconds, 4),
            "rtf": round(decode_seconds / audio_seconds, 6) if audio_seconds > 0 else None,
            "parameters": complexity.parameters,
            "flops_per_second": complexity.flops_per_second,
        }
        self.write(stats)
        logging.info("%s: %d utterances, RTF %.4f", target.out_dir, done.num_utterances,
                     decode_seconds / max(audio_seconds, 1e-9))
        return stats

    def write(self, stats: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / STATS_FILE).unlink(missing_ok=True)
        for name, lines in self.lines.items():
            write_lines_atomically(self.out_dir / name, lines)
        # Written last: its presence marks a finished output.
        write_text_atomically(self.out_dir / STATS_FILE, yaml.safe_dump(stats, sort_keys=False))
