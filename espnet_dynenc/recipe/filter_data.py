"""Stage 4: drop training utterances that are too short, too long or have no transcript.

Mirrors ESPnet's stage 4: keep an utterance when ``min < num_samples < max`` (strictly)
and its text has at least one word; then keep only utterances present in every file, as
Kaldi's ``fix_data_dir.sh`` does. Test sets are never filtered.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from espnet_dynenc.recipe.tables import read_table, restrict, spk2utt_of, write_table

REQUIRED = ("wav.scp", "utt2num_samples", "text", "utt2spk")


@dataclass(frozen=True)
class FilterReport:
    total: int
    too_short: int
    too_long: int
    empty_text: int
    kept: int

    def summary(self) -> str:
        return (
            f"kept {self.kept} of {self.total} utterances "
            f"({self.too_short} too short, {self.too_long} too long, {self.empty_text} without text, "
            f"{self.total - self.kept - self.too_short - self.too_long - self.empty_text} missing from some file)"
        )


def samples_range(min_seconds: float, max_seconds: float, fs: int) -> tuple:
    """ESPnet's bounds in samples: int(seconds * fs)."""
    return int(min_seconds * fs), int(max_seconds * fs)


def filter_data_dir(src: Path, dst: Path, min_samples: int, max_samples: int) -> FilterReport:
    """Write the filtered copy of ``src`` into ``dst``."""
    missing = [name for name in REQUIRED if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{src}: missing {', '.join(missing)}")
    lengths = read_table(src / "utt2num_samples")
    text = read_table(src / "text")
    wav = read_table(src / "wav.scp")
    utt2spk = read_table(src / "utt2spk")
    too_short = {u for u, n in lengths.items() if int(n) <= min_samples}
    too_long = {u for u, n in lengths.items() if int(n) >= max_samples}
    empty = {u for u, words in text.items() if not words.strip()} - too_short - too_long
    keep = set(lengths) - too_short - too_long - empty
    keep &= set(text) & set(wav) & set(utt2spk)
    dst.mkdir(parents=True, exist_ok=True)
    for name, table in (("wav.scp", wav), ("utt2num_samples", lengths), ("text", text), ("utt2spk", utt2spk)):
        write_table(dst / name, restrict(table, keep))
    write_table(dst / "spk2utt", spk2utt_of(restrict(utt2spk, keep)))
    if (src / "feats_type").is_file():
        shutil.copyfile(src / "feats_type", dst / "feats_type")
    total = len(set(lengths) | set(text) | set(wav) | set(utt2spk))
    return FilterReport(total, len(too_short), len(too_long), len(empty), len(keep))
