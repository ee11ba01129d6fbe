"""ESPnet's decoding output files of one target, written when the whole set is decoded."""
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from espnet_dynenc.atomic_files import write_lines_atomically, write_text_atomically

OUTPUT_FILES = ("text", "token", "token_int", "score")


class SubnetWriter:
    """Collects one target's results and writes them atomically at the end.

    ``decode_stats.yaml`` is written last, so its presence marks a finished target: a
    stage that is interrupted and rerun never mistakes half an output for a whole one.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.lines: Dict[str, List[str]] = {name: [] for name in OUTPUT_FILES}
        self.seconds = 0.0
        self.audio_seconds = 0.0

    def add(self, key: str, token_ids: Sequence[int], tokens: Sequence[str], text: str, score: float) -> None:
        self.lines["token_int"].append(f"{key} {' '.join(map(str, token_ids))}".rstrip())
        self.lines["token"].append(f"{key} {' '.join(tokens)}".rstrip())
        self.lines["text"].append(f"{key} {text}".rstrip())
        self.lines["score"].append(f"{key} {score:.4f}")

    def finish(self, stats: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "decode_stats.yaml").unlink(missing_ok=True)
        for name, lines in self.lines.items():
            write_lines_atomically(self.out_dir / name, lines)
        # Written last: its presence marks a finished size.
        write_text_atomically(self.out_dir / "decode_stats.yaml", yaml.safe_dump(stats, sort_keys=False))
