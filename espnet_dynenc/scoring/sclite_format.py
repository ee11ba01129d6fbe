"""Write the report of ``sclite -r REF trn -h HYP trn -i rm -o all stdout``.

The report has three parts, as sclite's: the summary by speaker in percent ("sum"), the
same in counts ("rsum") and the word alignment of every utterance ("pralign"). ESPnet's
tools read the ``| Sum/Avg |`` line and the ``SPKR`` header of the first part; the layout
follows sclite's to the byte so that either program's ``result.txt`` serves.

Speakers and utterances come in the order of the hypothesis file; every hypothesis id must
have a reference (reference lines without a hypothesis are ignored, as sclite does).
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from espnet_dynenc.scoring.report_table import PAGE_WIDTH, ReportTable, byte_len, c_round, center, pad_right
from espnet_dynenc.scoring.trn import index_by_id, read_trn
from espnet_dynenc.scoring.wer import (
    CORRECT,
    DELETION,
    INSERTION,
    AlignedPair,
    ErrorCounts,
    align,
    ascii_upper,
    count_errors,
)

TITLE = "SYSTEM SUMMARY PERCENTAGES by SPEAKER"
ALIGNMENT_LINE_WIDTH = 1000  # sclite's default for -l
ASTERISKS = "*" * 40  # sclite pads missing words with at most this many '*'
ZERO_REF_NOTE = (
    "\n* No Reference words for this/these speaker(s).  Word counts supplied\n"
    "  rather than percents.\n"
    "# No Reference words for this/these speaker(s).  NCE not computable.\n"
    "+ Speaker(s) with no reference data is ignored\n"
)


@dataclass
class ScoredUtterance:
    utt_id: str
    alignment: List[AlignedPair]
    counts: ErrorCounts


@dataclass
class SpeakerScores:
    name: str
    utterances: List[ScoredUtterance]

    @property
    def counts(self) -> ErrorCounts:
        total = ErrorCounts()
        for utt in self.utterances:
            total = total + utt.counts
        return total


def score_files(ref_path: Path, hyp_path: Path) -> List[SpeakerScores]:
    """Align every hypothesis with its reference; speakers in order of first appearance."""
    refs = index_by_id(read_trn(ref_path), ref_path)
    hyps = read_trn(hyp_path)
    missing = [h.utt_id for h in hyps if h.utt_id not in refs]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{hyp_path}: {len(missing)} id(s) without a reference in {ref_path}: {shown}")
    speakers: Dict[str, SpeakerScores] = {}
    for hyp in hyps:
        alignment = align(refs[hyp.utt_id].tokens, hyp.tokens)
        scored = ScoredUtterance(hyp.utt_id, alignment, count_errors(alignment))
        speakers.setdefault(hyp.speaker, SpeakerScores(hyp.speaker, [])).utterances.append(scored)
    return list(speakers.values())


def sclite_report(ref_path: Path, hyp_path: Path, title: str = None) -> str:
    """The whole report; ``title`` defaults to the hypothesis path as given, like sclite."""
    title = str(hyp_path) if title is None else title
    speakers = score_files(ref_path, hyp_path)
    return (
        summary_section(speakers, title, raw=False)
        + summary_section(speakers, title, raw=True)
        + alignment_section(speakers, title)
    )


def total_counts(speakers: Sequence[SpeakerScores]) -> ErrorCounts:
    total = ErrorCounts()
    for speaker in speakers:
        total = total + speaker.counts
    return total


# ----------------------------------------------------------------------------- summary


def percent(part: float, whole: float) -> float:
    return 0.0 if whole == 0 else part / whole * 100.0


def _speaker_values(counts: ErrorCounts, raw: bool) -> List[float]:
    """Corr, Sub, Del, Ins, Err of one speaker: percent of reference words, or counts."""
    values = [counts.correct, counts.substitutions, counts.deletions, counts.insertions, counts.errors]
    if raw or counts.ref_words == 0:
        return [float(v) for v in values]
    return [percent(v, counts.ref_words) for v in values]


def summary_section(speakers: Sequence[SpeakerScores], title: str, raw: bool) -> str:
    table = ReportTable()
    table.add_row("c", title)
    table.add_rule("-")
    table.add_row("l|cc|cccccc", " SPKR", " # Snt", "# Wrd", "Corr", " Sub", " Del", " Ins", " Err", "S.Err")
    speakers_without_words = 0
    for speaker in speakers:
        table.add_rule("-")
        cells, has_words = _speaker_row(speaker, raw)
        speakers_without_words += 0 if has_words else 1
        table.add_row("l|cc|cccccc", *cells)
    table.add_rule("=")
    table.add_row("l|cc|cccccc", *_total_row(total_counts(speakers), raw))
    table.add_rule("=")
    for cells in _statistics_rows(speakers, raw, speakers_without_words):
        table.add_row("c|cc|cccccc", *cells)
    text = "\n\n\n" + center(TITLE, PAGE_WIDTH) + "\n\n" + "\n".join(table.render()) + "\n"
    if speakers_without_words and not raw:
        text += ZERO_REF_NOTE
    return text


def _speaker_row(speaker: SpeakerScores, raw: bool) -> Tuple[List[str], bool]:
    counts = speaker.counts
    values = _speaker_values(counts, raw)
    has_words = raw or counts.ref_words > 0
    if has_words:
        digits, fmt = (0, "%5.0f ") if raw else (1, "%5.1f ")
        shown = [fmt % c_round(v, digits) for v in values]
    else:
        # no reference words: sclite prints the counts, flagged with '*'
        shown = ["%5.0f*" % c_round(v, 0) for v in values]
    sentence_errors = counts.sentence_errors if raw else percent(counts.sentence_errors, counts.sentences)
    digits, fmt = (0, "%5.0f ") if raw else (1, "%5.1f ")
    cells = [f" {speaker.name} ", "%5d" % counts.sentences, "%5d" % counts.ref_words]
    return cells + shown + [fmt % c_round(sentence_errors, digits)], has_words


def _total_row(total: ErrorCounts, raw: bool) -> List[str]:
    values = [total.correct, total.substitutions, total.deletions, total.insertions, total.errors]
    head = ["%5d" % total.sentences, "%5d" % total.ref_words]
    if raw:
        return [" Sum"] + head + ["%5.0f " % c_round(float(v), 0) for v in values + [total.sentence_errors]]
    shown = ["%5.1f " % c_round(percent(v, total.ref_words), 1) for v in values]
    return [" Sum/Avg"] + head + shown + ["%5.1f " % c_round(percent(total.sentence_errors, total.sentences), 1)]


def _statistics_rows(speakers: Sequence[SpeakerScores], raw: bool, speakers_without_words: int) -> List[List[str]]:
    """Mean, S.D. and median over speakers, computed the way sclite computes them."""
    counts = [s.counts for s in speakers]
    sentences = [c.sentences for c in counts]
    words = [c.ref_words for c in counts]
    columns = [list(col) for col in zip(*[_speaker_values(c, raw) for c in counts])]
    if speakers_without_words:
        columns = [_drop_speakers_without_words(col, words) for col in columns]
    used = len(counts) - speakers_without_words
    sentence_errors = [float(c.sentence_errors) if raw else percent(c.sentence_errors, c.sentences) for c in counts]
    stats = [_mean_sd_median(sentences), _mean_sd_median(words)]
    stats += [_mean_sd_median(col[:used]) for col in columns]
    stats.append(_mean_sd_median(sentence_errors))
    flagged = "%5.1f+" if speakers_without_words else "%5.1f "
    formats = ["%5.1f ", "%5.1f "] + [flagged] * 5 + ["%5.1f "]
    rows = []
    for label, index in ((" Mean ", 0), (" S.D. ", 1), ("Median", 2)):
        rows.append([label] + [fmt % c_round(stat[index], 1) for fmt, stat in zip(formats, stats)])
    return rows


def _drop_speakers_without_words(values: List[float], words: List[int]) -> List[float]:
    """sclite's in-place removal: shift later speakers up over one without words.

    The test looks at the original speaker index after the data have moved, exactly as
    sclite's loop does, so that the statistics agree with sclite's in every case.
    """
    values = list(values)
    for index in range(len(values)):
        if words[index] == 0:
            values[index:-1] = values[index + 1 :]
            values[-1] = -1000.0
    return values


def _mean_sd_median(values: Sequence[float]) -> Tuple[float, float, float]:
    """Mean, sample standard deviation (n - 1) and median; all zero for no values."""
    count = len(values)
    if count == 0:
        return 0.0, 0.0, 0.0
    mean = sum(values) / count
    ordered = sorted(values)
    half = count // 2
    median = ordered[half] if count % 2 else (ordered[half] + ordered[half - 1]) / 2
    spread = sum((v - mean) * (v - mean) for v in values)
    sd = math.sqrt(spread / (count - 1)) if spread != 0.0 else 0.0
    return mean, sd, float(median)


# ----------------------------------------------------------------------------- alignments


def alignment_section(speakers: Sequence[SpeakerScores], title: str) -> str:
    lines = ["", "", "\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE", "", f"System name:   {title}", "", "Speakers: "]
    lines += ["   %2d:  %s" % (i, s.name) for i, s in enumerate(speakers)]
    lines.append("")
    for index, speaker in enumerate(speakers):
        lines.append("Speaker sentences%4d:  %s   #utts: %d" % (index, speaker.name, len(speaker.utterances)))
        for utt in speaker.utterances:
            lines += utterance_alignment_lines(utt)
            lines.append("")
    lines.append("")
    return "\n".join(lines) + "\n"


def utterance_alignment_lines(utt: ScoredUtterance) -> List[str]:
    c = utt.counts
    lines = [f"id: {utt.utt_id}", f"Scores: (#C #S #D #I) {c.correct} {c.substitutions} {c.deletions} {c.insertions}"]
    columns = [_alignment_column(pair) for pair in utt.alignment]
    start = 0  # an empty alignment prints no REF/HYP/Eval lines at all, as in sclite
    while start < len(columns):
        end = _pass_end(columns, start)
        prefix = ">> " if start > 0 else ""
        if start > 0:
            lines.append("")
        for label, part in (("REF:  ", 0), ("HYP:  ", 1), ("Eval: ", 2)):
            lines.append(prefix + label + "".join(pad_right(col[part], col[3]) + " " for col in columns[start:end]))
        start = end
    return lines


def _alignment_column(pair: AlignedPair) -> Tuple[str, str, str, int]:
    """(ref text, hyp text, eval mark, width in bytes); errors in upper case, gaps as '*'."""
    ref_len = 1 if pair.op == INSERTION else byte_len(pair.ref)
    hyp_len = 1 if pair.op == DELETION else byte_len(pair.hyp)
    width = max(ref_len, hyp_len)
    if pair.op == INSERTION:
        ref, hyp, mark = ASTERISKS[: min(hyp_len, 40)], ascii_upper(pair.hyp), "I"
    elif pair.op == DELETION:
        ref, hyp, mark = ascii_upper(pair.ref), ASTERISKS[: min(ref_len, 40)], "D"
    elif pair.op == CORRECT:
        ref, hyp, mark = pair.ref, pair.hyp, ""
    else:
        ref, hyp, mark = ascii_upper(pair.ref), ascii_upper(pair.hyp), "S"
    return ref, hyp, mark, width


def _pass_end(columns, start: int) -> int:
    """Index after the last column that fits on one line of sclite's alignment output."""
    used = 9 if start > 0 else 6
    index = start
    while used < ALIGNMENT_LINE_WIDTH and index < len(columns):
        used += 1 + columns[index][3]
        index += 1
    end = index - (1 if index < len(columns) else 0)
    return max(end, start + 1)
