"""Stage 13: RESULTS.md's comparison of the decodings of one model (greedy, beam, beam + LM).

Every decoding configuration writes its own ``exp/asr_<tag>/decode_<inference_tag>/``, and
stage 13 scores one of them per call. Once two or more of them are scored for the test
sets, this section puts them side by side, one row per decoding and size: how it searched
(greedy CTC, or ESPnet's beam search with its beam and, with an LM, the weight used for
that size), WER and CER per test set and the real-time factor per test set, so the gain
of the LM and its cost in decoding time read off one table. The decodings are listed
greedy first, then by directory name; a size a decoding lacks shows as n/a.
"""
from pathlib import Path
from typing import List, Optional, Sequence

from espnet_dynenc.decode.outputs import DecodeOutput
from espnet_dynenc.recipe.results_table import MISSING, error_rate, load_stats, markdown_table, sizes_decoded

GREEDY = "greedy"


def decoding_of(stats: Optional[dict]) -> str:
    """How a decoder's ``decode_stats.yaml`` says it searched (the greedy decoder writes no name)."""
    return str((stats or {}).get("decoding", GREEDY))


def describe_decoding(decode_dir: Path, test_sets: Sequence[str], sizes: Sequence[int]) -> str:
    """``greedy CTC``, or e.g. ``beam + LM (beam 10, lm_weight per size: 8: 0.6, 16: 0.4)``."""
    stats = [load_stats(DecodeOutput.whole(size).folder(decode_dir / test_set))
             for test_set in test_sets for size in sizes]
    stats = [s for s in stats if s]
    if not stats or decoding_of(stats[0]) == GREEDY:
        return "greedy CTC"
    first = stats[0]
    parts = [f"beam {first.get('beam_size', MISSING)}"]
    weights = {s.get("subnet"): s.get("lm_weight") for s in stats if "lm_weight" in s}
    if len(set(weights.values())) == 1:
        parts.append(f"lm_weight {next(iter(weights.values()))}")
    elif weights:
        parts.append("lm_weight per size: " + ", ".join(f"{size}: {w}" for size, w in sorted(weights.items())))
    return f"{decoding_of(first)} ({', '.join(parts)})"


def scored_decodings(exp_dir: Path, test_sets: Sequence[str]) -> List[Path]:
    """The decoding directories of ``exp_dir`` with a scored size for some test set."""
    found = []
    for decode_dir in sorted(exp_dir.glob("decode_*")):
        sizes = sizes_decoded(decode_dir, test_sets)
        if any((DecodeOutput.whole(s).folder(decode_dir / t) / "score_wer" / "result.txt").is_file()
               for t in test_sets for s in sizes):
            found.append(decode_dir)
    greedy_first = sorted(found, key=lambda d: (decoding_of(_any_stats(d, test_sets)) != GREEDY, d.name))
    return greedy_first


def _any_stats(decode_dir: Path, test_sets: Sequence[str]) -> Optional[dict]:
    for test_set in test_sets:
        for size in sizes_decoded(decode_dir, [test_set]):
            stats = load_stats(DecodeOutput.whole(size).folder(decode_dir / test_set))
            if stats:
                return stats
    return None


def _cell(value: Optional[object]) -> str:
    return "-" if value is None else str(value)


def decoding_rows(decode_dir: Path, test_sets: Sequence[str], sizes: Sequence[int]) -> List[List[str]]:
    rows = []
    for size in sizes:
        folders = [DecodeOutput.whole(size).folder(decode_dir / t) for t in test_sets]
        stats = [load_stats(f) for f in folders]
        known = next((s for s in stats if s), None)
        if known is None:
            continue
        row = [decoding_of(known), str(size), _cell(known.get("beam_size")), _cell(known.get("lm_weight"))]
        row += [error_rate(f, "wer") for f in folders] + [error_rate(f, "cer") for f in folders]
        row += [f"{s['rtf']:.4f}" if s and "rtf" in s else MISSING for s in stats]
        rows.append(row + [f"`{decode_dir.name}`"])
    return rows


def decodings_markdown(exp_dir: Path, test_sets: Sequence[str], sizes: Optional[Sequence[int]] = None) -> List[str]:
    """The comparison section, or nothing while fewer than two decodings are scored."""
    decodings = scored_decodings(exp_dir, test_sets)
    if len(decodings) < 2:
        return []
    header = ["decoding", "size", "beam", "lm_weight"]
    header += [f"WER {t} (%)" for t in test_sets] + [f"CER {t} (%)" for t in test_sets]
    header += [f"RTF {t}" for t in test_sets] + ["directory"]
    rows = []
    for decode_dir in decodings:
        wanted = list(sizes) if sizes else sizes_decoded(decode_dir, test_sets)
        rows += decoding_rows(decode_dir, test_sets, wanted)
    lines = ["", "## Decodings compared",
             "- every scored decoding directory of this model; beam search is ESPnet's (CTC prefix scores,"
             " ctc_weight 1.0), one utterance at a time; RTF counts the whole decoding of a size",
             ""]
    return lines + markdown_table(header, rows)
