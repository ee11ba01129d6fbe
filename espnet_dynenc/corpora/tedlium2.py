"""TED-LIUM release 2 (openslr 19) as ESPnet data directories ``train``, ``dev``, ``test``.

On disk: ``TEDLIUM_release2/<split>/sph/<talk>.sph`` (one recording per talk) and
``TEDLIUM_release2/<split>/stm/<talk>.stm``, whose lines are::

    <talk> <channel> <speaker> <start> <end> <label> <words...>

Conventions (those of ESPnet's tedlium2 recipe unless noted):

* segments whose words include ``ignore_time_segment_in_scoring`` are dropped;
* ``<sil>`` and pronunciation variant marks (``the(2)`` -> ``the``) are removed, as is a
  trailing ``(<utterance name>)`` token;
* split contractions are joined: a token starting with an apostrophe joins the word
  before it (``it 's`` -> ``it's``), but never a noise token or ``<unk>``;
* noise and filler tokens in braces (``{NOISE}``, ``{BREATH}``, ``{COUGH}``, ``{SMACK}``,
  ``{UH}``, ``{UM}``, ...) are dropped by default (``noise_tokens="drop"``): a CTC model
  trained on subword units has no use for them and they are not scored. With
  ``noise_tokens="bracket"`` they are kept the way ESPnet and Kaldi write them
  (``{NOISE}`` -> ``[NOISE]``). ``<unk>`` is kept in both modes. A segment left without
  words is dropped;
* utterance id ``<talk>-<start*100 as %07d>-<end*100 as %07d>``, computed from the decimal
  text of the times (so ``0.29`` gives ``0000029``, where a float product could give 28);
* the speaker is the talk; ``segments`` refer to the talk's recording;
* training segments are widened by 0.15 s at the start and 0.1 s at the end (ESPnet pads
  them because TED-LIUM's training segmentation cuts speech short), never past the middle
  of the gap to a neighbouring segment, and every segment is clipped to its recording;
* ``wav.scp`` names the ``.sph`` file when soundfile can read it (uncompressed PCM), and
  otherwise (the released files are shorten-compressed) pipes it through
  ``sph2pipe -f wav -p -c 1 <file> |``; sox and ffmpeg cannot decode shorten.
"""
import logging
import os
import re
import shutil
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from espnet_dynenc.corpora.download import fetch_and_extract
from espnet_dynenc.corpora.kaldi_dir import Segment, Utterance, write_finished_data_dir
from espnet_dynenc.corpora.lm_text import gzip_lines, numbered, write_lm_text

logger = logging.getLogger(__name__)

SPLITS: Tuple[str, ...] = ("train", "dev", "test")
EXPECTED_TALKS: Dict[str, int] = {"train": 1495, "dev": 8, "test": 11}
CORPUS_FOLDER = "TEDLIUM_release2"
URL = "https://www.openslr.org/resources/19/TEDLIUM_release2.tar.gz"
# SHA-256 of the openslr archive (the value torchaudio's TEDLIUM dataset verifies).
ARCHIVE_SHA256 = "93281b5fcaaae5c88671c9d000b443cb3c7ea3499ad12010b3934ca41a7b9c58"

NOISE_MODES: Tuple[str, ...] = ("drop", "bracket")
IGNORED_SEGMENT = "ignore_time_segment_in_scoring"
SILENCE = "<sil>"
UNKNOWN = "<unk>"
TRAIN_PADDING: Tuple[float, float] = (0.15, 0.1)
SPH2PIPE_HELP = (
    "Debian has no package for sph2pipe: build it with ESPnet's "
    "tools/installers/install_sph2pipe.sh (or 'make sph2pipe' in Kaldi's tools/), then put "
    "it on PATH or pass --sph2pipe /path/to/sph2pipe (local/data.sh --sph2pipe)"
)

_NOISE = re.compile(r"\{[^{}\s]+\}")
_VARIANT = re.compile(r"\(\d+\)")
_UTTERANCE_NAME = re.compile(r"\(.*\)")
_COMPRESSIONS = ("shorten", "wavpack", "shortpack")


@dataclass(frozen=True)
class SphereHeader:
    """The fields of a NIST SPHERE header that data preparation needs."""

    path: Path
    fields: Dict[str, str]

    @property
    def sample_coding(self) -> str:
        return self.fields.get("sample_coding", "pcm")

    @property
    def compressed(self) -> bool:
        """True for shorten/wavpack/shortpack data, which only sph2pipe decodes."""
        return any(name in self.sample_coding for name in _COMPRESSIONS)

    @property
    def duration(self) -> Optional[float]:
        """Length in seconds, or None when the header lacks ``sample_count``/``sample_rate``."""
        try:
            return int(self.fields["sample_count"]) / int(self.fields["sample_rate"])
        except (KeyError, ValueError, ZeroDivisionError):
            return None


@dataclass(frozen=True)
class StmSegment:
    """One ``.stm`` line; times in centiseconds as the utterance id spells them."""

    talk: str
    start_cs: int
    end_cs: int
    words: Tuple[str, ...]
    where: str

    @property
    def utt_id(self) -> str:
        return f"{self.talk}-{self.start_cs:07d}-{self.end_cs:07d}"


def read_sphere_header(path: os.PathLike) -> SphereHeader:
    """Parse ``NIST_1A``, the header size, then ``<name> -<type> <value>`` lines up to ``end_head``."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1024)
        lines = head.split(b"\n")
        if len(lines) < 3 or lines[0] != b"NIST_1A":
            raise ValueError(f"{path}: not a NIST SPHERE file (it does not start with 'NIST_1A')")
        try:
            header_size = int(lines[1])
        except ValueError:
            size_text = lines[1].decode(errors="replace")
            raise ValueError(f"{path}: bad SPHERE header size '{size_text}'") from None
        head += f.read(max(0, header_size - len(head)))
    return SphereHeader(path, _parse_header_fields(path, head[:header_size]))


def _parse_header_fields(path: Path, header: bytes) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for raw in header.decode("latin-1").split("\n")[2:]:
        line = raw.strip()
        if line == "end_head":
            return fields
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1].startswith("-"):
            fields[parts[0]] = parts[2]
    raise ValueError(f"{path}: SPHERE header has no 'end_head' line")


def parse_stm_line(line: str, where: str) -> Optional[StmSegment]:
    """One ``.stm`` line as a segment; None for blank and ``;;`` comment lines.

    ``where`` (``file:line``) goes into every error: too few fields, times that are not
    numbers, a negative start, an end not after the start, a label not in ``<...>``.
    """
    fields = line.split()
    if not fields or line.startswith(";;"):
        return None
    if len(fields) < 6:
        raise ValueError(
            f"{where}: expected '<talk> <channel> <speaker> <start> <end> <label> <words...>', "
            f"got {len(fields)} field(s): '{line.strip()}'"
        )
    start, end = _parse_time(fields[3], "start", where), _parse_time(fields[4], "end", where)
    if start < 0:
        raise ValueError(f"{where}: start time {fields[3]} is negative")
    if end <= start:
        raise ValueError(f"{where}: end time {fields[4]} is not after start time {fields[3]}")
    label = fields[5]
    if not (label.startswith("<") and label.endswith(">")):
        raise ValueError(f"{where}: field 6 must be a label like '<o,f0,male>', got '{label}'")
    return StmSegment(fields[0], _centiseconds(start), _centiseconds(end), tuple(fields[6:]), where)


def _parse_time(text: str, name: str, where: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise ValueError(f"{where}: {name} time '{text}' is not a number")
    return value


def _centiseconds(seconds: Decimal) -> int:
    return int((seconds * 100).to_integral_value(rounding=ROUND_HALF_UP))


def read_stm(stm_path: Path, talk: str) -> List[StmSegment]:
    """All segments of a talk's ``.stm``; each line must name the talk its file is named after."""
    segments = []
    with open(stm_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            segment = parse_stm_line(line, f"{stm_path}:{lineno}")
            if segment is None:
                continue
            if segment.talk != talk:
                raise ValueError(f"{segment.where}: names talk '{segment.talk}', expected '{talk}'")
            segments.append(segment)
    return segments


def normalize_words(words: Sequence[str], noise_tokens: str = "drop") -> str:
    """Transcript text for ESPnet from ``.stm`` words (see the module docstring for the rules)."""
    if noise_tokens not in NOISE_MODES:
        raise ValueError(f"noise_tokens must be one of {NOISE_MODES}, got '{noise_tokens}'")
    tokens = [_VARIANT.sub("", token) for token in words]
    tokens = [token for token in tokens if token and token != SILENCE]
    if tokens and _UTTERANCE_NAME.fullmatch(tokens[-1]):
        tokens.pop()
    tokens = join_contractions(tokens)
    if noise_tokens == "drop":
        tokens = [token for token in tokens if not _NOISE.fullmatch(token)]
    else:
        tokens = [f"[{t[1:-1]}]" if _NOISE.fullmatch(t) else t for t in tokens]
    return " ".join(tokens)


def join_contractions(tokens: Sequence[str]) -> List[str]:
    """Glue a token that starts with an apostrophe to the word before it: ``don 't`` -> ``don't``."""
    joined: List[str] = []
    for token in tokens:
        previous = joined[-1] if joined else None
        if token.startswith("'") and previous and previous != UNKNOWN and not _NOISE.fullmatch(previous):
            joined[-1] = previous + token
        else:
            joined.append(token)
    return joined


def pad_spans(spans: Sequence[Tuple[int, int]], start_pad: int, end_pad: int) -> List[Tuple[int, int]]:
    """Widen spans (sorted by start; centiseconds) without crossing the middle of a gap to a neighbour.

    Whole centiseconds keep the arithmetic exact, so ``segments`` shows the values computed.
    """
    padded = []
    for i, (start, end) in enumerate(spans):
        new_start, new_end = max(0, start - start_pad), end + end_pad
        if i > 0:
            middle = (spans[i - 1][1] + start) // 2
            new_start = max(new_start, min(start, middle))
        if i + 1 < len(spans):
            middle = (end + spans[i + 1][0]) // 2
            new_end = min(new_end, max(end, middle))
        padded.append((new_start, new_end))
    return padded


def unique_segments(segments: Iterable[StmSegment], noise_tokens: str) -> List[Tuple[StmSegment, str]]:
    """Scored segments with their text, sorted by time; exact repeats are skipped with a warning.

    Two lines with the same times but different words would give one utterance id two
    transcripts: that is an error naming both lines.
    """
    kept: Dict[str, Tuple[StmSegment, str]] = {}
    for segment in segments:
        if IGNORED_SEGMENT in segment.words:
            continue
        text = normalize_words(segment.words, noise_tokens)
        if not text:
            logger.debug("%s: no words left after normalization; segment dropped", segment.where)
            continue
        if segment.utt_id in kept:
            first, first_text = kept[segment.utt_id]
            if first_text != text:
                raise ValueError(f"{segment.where}: same times as {first.where} but different words")
            logger.warning("%s: repeats %s; skipped", segment.where, first.where)
            continue
        kept[segment.utt_id] = (segment, text)
    return sorted(kept.values(), key=lambda item: (item[0].start_cs, item[0].end_cs))


def talk_utterances(
    talk: str,
    segments: Sequence[StmSegment],
    audio: str,
    duration: Optional[float],
    noise_tokens: str = "drop",
    padding: Tuple[float, float] = (0.0, 0.0),
) -> List[Utterance]:
    """Utterances of one talk: padded by ``padding`` seconds, clipped to the recording, speaker = talk."""
    scored = unique_segments(segments, noise_tokens)
    pads_cs = (round(padding[0] * 100), round(padding[1] * 100))
    spans = pad_spans([(s.start_cs, s.end_cs) for s, _ in scored], *pads_cs)
    # Rounded down, so a clipped segment never ends after the last sample.
    last_cs = int(duration * 100) if duration is not None else None
    utterances = []
    for (segment, text), (start, end) in zip(scored, spans):
        if last_cs is not None:
            if start >= last_cs:
                logger.warning(
                    "%s: starts after the recording ends (%.2f s); skipped", segment.where, duration
                )
                continue
            end = min(end, last_cs)
        utterances.append(Utterance(segment.utt_id, talk, audio, text, Segment(talk, start / 100, end / 100)))
    return utterances


def find_sph2pipe(sph2pipe: str) -> Optional[str]:
    """Absolute path of the sph2pipe program (a name looked up on PATH, or a path), or None."""
    found = shutil.which(sph2pipe)
    return os.path.abspath(found) if found else None


def audio_for_wav_scp(header: SphereHeader, sph2pipe_path: Optional[str]) -> str:
    """The ``wav.scp`` value: the file itself, or a sph2pipe pipe for compressed data."""
    path = os.path.abspath(header.path)
    if any(c.isspace() for c in path):
        raise ValueError(f"{path}: audio path contains whitespace, which wav.scp cannot hold")
    if not header.compressed:
        return path
    if sph2pipe_path is None:
        raise RuntimeError(
            f"{path}: sample_coding '{header.sample_coding}' is compressed and only sph2pipe "
            f"decodes it, but sph2pipe was not found. {SPH2PIPE_HELP}"
        )
    return f"{sph2pipe_path} -f wav -p -c 1 {path} |"


def find_corpus_root(corpus_dir: os.PathLike) -> Path:
    """The ``TEDLIUM_release2`` folder: ``corpus_dir/TEDLIUM_release2``, or ``corpus_dir`` itself."""
    given = Path(corpus_dir)
    if (given / CORPUS_FOLDER).is_dir():
        return given / CORPUS_FOLDER
    if any((given / split).is_dir() for split in SPLITS):
        return given
    raise FileNotFoundError(
        f"{given}: no '{CORPUS_FOLDER}' folder (nor train/dev/test) here; "
        "point to the folder the TED-LIUM archive was extracted into"
    )


def list_talks(split_dir: Path) -> List[str]:
    """Talks that have both a ``.sph`` and a ``.stm``; a file without its partner is skipped (warning)."""
    folders = {kind: split_dir / kind for kind in ("sph", "stm")}
    for folder in folders.values():
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: missing (expected TEDLIUM_release2/<split>/sph and stm)")
    sph = {p.stem for p in folders["sph"].glob("*.sph")}
    stm = {p.stem for p in folders["stm"].glob("*.stm")}
    for talk in sorted(sph - stm):
        logger.warning("%s: skipping %s.sph: no %s.stm", folders["stm"], talk, talk)
    for talk in sorted(stm - sph):
        logger.warning("%s: skipping %s.stm: no %s.sph", folders["sph"], talk, talk)
    return sorted(sph & stm)


def check_talk_count(split: str, found: int) -> None:
    """Compare with the number of talks TED-LIUM 2 has in a split."""
    expected = EXPECTED_TALKS[split]
    if found != expected:
        raise ValueError(
            f"TED-LIUM 2 {split}: found {found} talks with .sph and .stm, expected {expected}; "
            "the corpus is incomplete (re-extract it), or pass --no_check_counts "
            "(local/data.sh --relax_checks true) to accept a partial corpus"
        )


def collect_split(
    corpus_root: Path,
    split: str,
    noise_tokens: str = "drop",
    sph2pipe_path: Optional[str] = None,
    check_counts: bool = True,
    padding: Tuple[float, float] = (0.0, 0.0),
) -> List[Utterance]:
    """All utterances of one split."""
    split_dir = corpus_root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: TED-LIUM 2 split '{split}' is missing")
    talks = list_talks(split_dir)
    if check_counts:
        check_talk_count(split, len(talks))
    utterances: List[Utterance] = []
    for talk in talks:
        header = read_sphere_header(split_dir / "sph" / f"{talk}.sph")
        audio = audio_for_wav_scp(header, sph2pipe_path)
        segments = read_stm(split_dir / "stm" / f"{talk}.stm", talk)
        utterances.extend(talk_utterances(talk, segments, audio, header.duration, noise_tokens, padding))
    return utterances


def prepare_tedlium2(
    corpus_dir: os.PathLike,
    data_dir: os.PathLike,
    splits: Iterable[str] = SPLITS,
    check_counts: bool = True,
    noise_tokens: str = "drop",
    sph2pipe: str = "sph2pipe",
    train_padding: Tuple[float, float] = TRAIN_PADDING,
) -> Dict[str, int]:
    """Write ``data_dir/<split>`` for each split; return utterances per split.

    Every directory gets a ``.done`` marker once written and validated.
    """
    wanted = list(splits)
    unknown = [s for s in wanted if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown TED-LIUM 2 split(s) {unknown}; choose from {list(SPLITS)}")
    if noise_tokens not in NOISE_MODES:
        raise ValueError(f"noise_tokens must be one of {NOISE_MODES}, got '{noise_tokens}'")
    root = find_corpus_root(corpus_dir)
    sph2pipe_path = find_sph2pipe(sph2pipe)
    counts = {}
    for split in wanted:
        padding = train_padding if split == "train" else (0.0, 0.0)
        utterances = collect_split(root, split, noise_tokens, sph2pipe_path, check_counts, padding)
        out = Path(data_dir) / split
        counts[split] = write_finished_data_dir(out, utterances)
        logger.info("%s: %d utterances", out, counts[split])
    return counts


def download_tedlium2(
    corpus_dir: os.PathLike,
    url: str = URL,
    verify_checksum: bool = True,
    remove_archive: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download and extract the release into ``corpus_dir`` (giving ``corpus_dir/TEDLIUM_release2``)."""
    checksum = f"sha256:{ARCHIVE_SHA256}" if verify_checksum else None
    return fetch_and_extract(url, corpus_dir, checksum, timeout=timeout, remove_archive=remove_archive)


# The release's own LM text: "selected monolingual data for language modeling from WMT12
# publicly available corpora", lower case and tokenised like the transcripts (``it 's``), in
# TEDLIUM_release2/LM/*.en.gz, one sentence per line ending in ``</s>``.
LM_FOLDER = "LM"
LM_TEXT_PREFIX = "tedlium2_lm"
_SENTENCE_MARKS = ("<s>", "</s>")


def lm_text_files(corpus_dir: os.PathLike) -> List[Path]:
    """The release's ``LM/*.en.gz`` files (none when the release or a partial copy lacks them)."""
    folder = find_corpus_root(corpus_dir) / LM_FOLDER
    return sorted(folder.glob("*.en.gz")) if folder.is_dir() else []


def normalize_lm_line(line: str) -> str:
    """A sentence of the LM text normalised as the transcripts are: sentence marks dropped,
    split contractions joined (``it 's`` -> ``it's``)."""
    tokens = [token for token in line.split() if token not in _SENTENCE_MARKS]
    return " ".join(join_contractions(tokens))


def prepare_lm_text(corpus_dir: os.PathLike, out_text: os.PathLike) -> int:
    """``<id> <sentence>`` lines of the release's LM text into ``out_text``; return the count.

    A release without ``LM/`` gets an empty ``out_text`` (and a warning): the language model
    then learns from the training transcripts alone, which asr.sh's --lm_train_text lists
    next to this file."""
    files = lm_text_files(corpus_dir)
    if not files:
        logger.warning("%s: no %s/*.en.gz; the LM text is the training transcripts alone (%s is empty)",
                       find_corpus_root(corpus_dir), LM_FOLDER, out_text)
    return write_lm_text(out_text, numbered(gzip_lines(files), LM_TEXT_PREFIX, normalize_lm_line))
