"""LibriSpeech (openslr 12) as ESPnet data directories.

On disk, every part unpacks into the same top folder::

    LibriSpeech/SPEAKERS.TXT
    LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>.trans.txt
    LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>-<utt>.flac

Each part becomes a data directory named with ``_`` (``dev-clean`` -> ``dev_clean``),
and, as in ESPnet's recipe, ``train_960`` (the three training parts) and ``dev``
(``dev_clean`` + ``dev_other``) are written when all their parts are prepared.
The speaker is ``<reader>-<chapter>``, which prefixes every utterance id; ``wav.scp``
names the FLAC files themselves (ESPnet reads them with soundfile), and ``spk2gender``
comes from ``SPEAKERS.TXT``. Transcripts are kept as they are (upper case).
"""
import logging
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from espnet_dynenc.corpora.download import download, fetch_and_extract
from espnet_dynenc.corpora.kaldi_dir import Utterance, write_finished_data_dir
from espnet_dynenc.corpora.lm_text import gzip_lines, numbered, write_lm_text

logger = logging.getLogger(__name__)

PARTS: Tuple[str, ...] = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)

EXPECTED_UTTERANCES: Dict[str, int] = {
    "dev-clean": 2703,
    "dev-other": 2864,
    "test-clean": 2620,
    "test-other": 2939,
    "train-clean-100": 28539,
    "train-clean-360": 104014,
    "train-other-500": 148688,
}

COMBINED_SETS: Dict[str, Tuple[str, ...]] = {
    "train_960": ("train-clean-100", "train-clean-360", "train-other-500"),
    "dev": ("dev-clean", "dev-other"),
}

BASE_URL = "https://www.openslr.org/resources/12"

# SHA-256 of the openslr archives (the values torchaudio's LibriSpeech dataset verifies).
ARCHIVE_SHA256: Dict[str, str] = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}

CORPUS_FOLDER = "LibriSpeech"
SPEAKERS_FILE = "SPEAKERS.TXT"
_GENDERS = {"M": "m", "F": "f"}


def data_dir_name(part: str) -> str:
    """ESPnet's name for a part's data directory: ``train-clean-100`` -> ``train_clean_100``."""
    return part.replace("-", "_")


def check_parts(parts: Iterable[str]) -> List[str]:
    """Return ``parts`` in corpus order; an unknown name is an error that lists the known ones."""
    wanted = list(parts)
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown LibriSpeech part(s) {unknown}; choose from {list(PARTS)}")
    return [p for p in PARTS if p in wanted]


def find_corpus_root(corpus_dir: os.PathLike) -> Path:
    """The ``LibriSpeech`` folder: ``corpus_dir/LibriSpeech``, or ``corpus_dir`` itself."""
    given = Path(corpus_dir)
    if (given / CORPUS_FOLDER).is_dir():
        return given / CORPUS_FOLDER
    if (given / SPEAKERS_FILE).is_file():
        return given
    raise FileNotFoundError(
        f"{given}: no '{CORPUS_FOLDER}' folder (nor a '{SPEAKERS_FILE}') here; "
        "point to the folder the LibriSpeech archives were extracted into"
    )


def read_speaker_genders(speakers_txt: os.PathLike) -> Dict[str, str]:
    """Map reader id to ``m``/``f`` from ``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``).

    Names may themselves contain ``|``, so only the first fields are split off.
    """
    genders: Dict[str, str] = {}
    with open(speakers_txt, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith(";"):
                continue
            fields = [field.strip() for field in line.split("|", 4)]
            if len(fields) < 3 or not fields[0].isdigit():
                raise ValueError(
                    f"{speakers_txt}:{lineno}: expected 'ID | SEX | SUBSET | MINUTES | NAME', "
                    f"got '{line.rstrip()}'"
                )
            if fields[1] not in _GENDERS:
                raise ValueError(f"{speakers_txt}:{lineno}: sex must be M or F, got '{fields[1]}'")
            genders[fields[0]] = _GENDERS[fields[1]]
    return genders


def read_transcripts(trans_txt: Path, reader: str, chapter: str) -> Dict[str, str]:
    """Read ``<reader>-<chapter>.trans.txt``: utterance id -> words.

    Every id must be ``<reader>-<chapter>-<number>`` of this very folder; a line without
    words, a foreign id or a repeated id is an error that names the file and line.
    """
    id_pattern = re.compile(rf"{re.escape(reader)}-{re.escape(chapter)}-\d+")
    transcripts: Dict[str, str] = {}
    with open(trans_txt, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            utt_id, _, words = line.strip().partition(" ")
            words = " ".join(words.split())
            where = f"{trans_txt}:{lineno}"
            if not id_pattern.fullmatch(utt_id):
                raise ValueError(f"{where}: utterance id '{utt_id}' is not '{reader}-{chapter}-<number>'")
            if not words:
                raise ValueError(f"{where}: utterance '{utt_id}' has no words")
            if utt_id in transcripts:
                raise ValueError(f"{where}: utterance '{utt_id}' appears twice")
            transcripts[utt_id] = words
    return transcripts


def collect_chapter(chapter_dir: Path, reader: str) -> List[Utterance]:
    """Utterances of one chapter folder: every transcript line that has its FLAC file.

    A transcript line without audio, or audio without a transcript line, cannot be used:
    it is skipped with a warning (the per-part count check catches real losses).
    """
    chapter = chapter_dir.name
    speaker = f"{reader}-{chapter}"
    trans_txt = chapter_dir / f"{speaker}.trans.txt"
    if not trans_txt.is_file():
        raise FileNotFoundError(f"{chapter_dir}: missing transcript file '{trans_txt.name}'")
    transcripts = read_transcripts(trans_txt, reader, chapter)
    flac_ids = {p.name[: -len(".flac")] for p in chapter_dir.iterdir() if p.name.endswith(".flac")}
    _warn_about_unpaired(trans_txt, transcripts.keys(), flac_ids)
    utterances = []
    for utt_id, words in transcripts.items():
        if utt_id in flac_ids:
            audio = _audio_path(chapter_dir / f"{utt_id}.flac")
            utterances.append(Utterance(utt_id, speaker, audio, words))
    return utterances


def _warn_about_unpaired(trans_txt: Path, transcribed: Iterable[str], flac_ids: Set[str]) -> None:
    for utt_id in sorted(set(transcribed) - flac_ids):
        logger.warning("%s: skipping '%s': its audio file %s.flac is missing", trans_txt, utt_id, utt_id)
    for utt_id in sorted(flac_ids - set(transcribed)):
        logger.warning("%s: skipping audio %s.flac: it has no transcript line", trans_txt, utt_id)


def _audio_path(path: Path) -> str:
    """Absolute path for ``wav.scp``, which separates fields by spaces and so cannot hold one."""
    absolute = os.path.abspath(path)
    if any(c.isspace() for c in absolute):
        raise ValueError(f"{absolute}: audio path contains whitespace, which wav.scp cannot hold")
    return absolute


def collect_part(corpus_root: Path, part: str) -> List[Utterance]:
    """All utterances of one part, walking ``<reader>/<chapter>`` folders."""
    part_dir = corpus_root / part
    if not part_dir.is_dir():
        raise FileNotFoundError(f"{part_dir}: LibriSpeech part '{part}' is missing")
    utterances: List[Utterance] = []
    for reader_dir in _numbered_subfolders(part_dir):
        for chapter_dir in _numbered_subfolders(reader_dir):
            utterances.extend(collect_chapter(chapter_dir, reader_dir.name))
    return utterances


def _numbered_subfolders(folder: Path) -> List[Path]:
    """Reader and chapter folders are numbers; anything else in their place is an error."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in subfolders:
        if not sub.name.isdigit():
            raise ValueError(f"{sub}: expected a numbered reader or chapter folder")
    return subfolders


def check_count(part: str, found: int) -> None:
    """Compare with the published utterance count of a part."""
    expected = EXPECTED_UTTERANCES[part]
    if found != expected:
        raise ValueError(
            f"LibriSpeech {part}: found {found} utterances with audio and transcript, expected "
            f"{expected}; the part is incomplete (re-extract it), or pass --no_check_counts "
            "(local/data.sh --relax_checks true) to accept a partial corpus"
        )


def speaker_genders(
    utterances: Sequence[Utterance], reader_genders: Mapping[str, str], speakers_txt: Path
) -> Dict[str, str]:
    """``spk2gender`` content: each ``<reader>-<chapter>`` speaker gets its reader's gender."""
    table: Dict[str, str] = {}
    for utt in utterances:
        reader = utt.speaker.split("-", 1)[0]
        if reader not in reader_genders:
            raise ValueError(f"{speakers_txt}: reader '{reader}' (of '{utt.utt_id}') is not listed")
        table[utt.speaker] = reader_genders[reader]
    return table


def prepare_librispeech(
    corpus_dir: os.PathLike,
    data_dir: os.PathLike,
    parts: Iterable[str] = PARTS,
    check_counts: bool = True,
) -> Dict[str, int]:
    """Write one data directory per part plus the combined sets; return utterances per directory.

    Every directory gets a ``.done`` marker once written and validated.
    """
    wanted = check_parts(parts)
    root = find_corpus_root(corpus_dir)
    speakers_txt = root / SPEAKERS_FILE
    if not speakers_txt.is_file():
        raise FileNotFoundError(f"{speakers_txt}: missing (it ships with every LibriSpeech part)")
    reader_genders = read_speaker_genders(speakers_txt)
    by_part = {part: collect_part(root, part) for part in wanted}
    if check_counts:
        for part, utterances in by_part.items():
            check_count(part, len(utterances))
    sets = {data_dir_name(part): utts for part, utts in by_part.items()}
    for name, members in COMBINED_SETS.items():
        if all(m in by_part for m in members):
            sets[name] = [utt for m in members for utt in by_part[m]]
        else:
            logger.info("not writing %s: it needs all of %s", name, " ".join(members))
    counts = {}
    for name, utterances in sets.items():
        genders = speaker_genders(utterances, reader_genders, speakers_txt)
        out = Path(data_dir) / name
        counts[name] = write_finished_data_dir(out, utterances, {"spk2gender": genders})
        logger.info("%s: %d utterances", out, counts[name])
    return counts


def download_librispeech(
    corpus_dir: os.PathLike,
    parts: Iterable[str] = PARTS,
    base_url: str = BASE_URL,
    verify_checksums: bool = True,
    remove_archives: bool = False,
    timeout: float = 60.0,
) -> List[Path]:
    """Download and extract the given parts into ``corpus_dir`` (giving ``corpus_dir/LibriSpeech``).

    Parts whose ``.complete`` marker exists are skipped; an interrupted download resumes.
    """
    archives = []
    for part in check_parts(parts):
        checksum: Optional[str] = f"sha256:{ARCHIVE_SHA256[part]}" if verify_checksums else None
        url = f"{base_url.rstrip('/')}/{part}.tar.gz"
        archives.append(
            fetch_and_extract(url, corpus_dir, checksum, timeout=timeout, remove_archive=remove_archives)
        )
    return archives


# The LM text corpus of openslr 11: about 40 million normalised sentences (upper case, as the
# transcripts) from 14,500 public-domain books, the books of dev and test left out.
LM_TEXT_URL = "https://www.openslr.org/resources/11/librispeech-lm-norm.txt.gz"
# openslr publishes no checksum for it; this MD5 is the one another LibriSpeech set-up
# records for its download (not recomputed here). A mismatch names the file and deletes the
# download; prepare_lm_text --no_verify_checksum (local/data.sh --lm_text_checksum false)
# skips the check.
LM_TEXT_MD5 = "c83c64c726a1aedfe65f80aa311de402"
LM_TEXT_PREFIX = "librispeech_lm_norm"


def download_lm_text(
    download_dir: os.PathLike, url: str = LM_TEXT_URL, verify_checksum: bool = True, timeout: float = 60.0
) -> Path:
    """Download ``librispeech-lm-norm.txt.gz`` into ``download_dir`` (resumable, verified); return it.

    A download already complete and verified is kept and not fetched again."""
    directory = Path(download_dir)
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / url.rstrip("/").rsplit("/", 1)[-1]
    checksum = f"md5:{LM_TEXT_MD5}" if verify_checksum else None
    return download(url, archive, checksum, timeout=timeout)


def prepare_lm_text(archive: os.PathLike, out_text: os.PathLike) -> int:
    """``<id> <sentence>`` lines of the LM text corpus into ``out_text``; return the count."""
    return write_lm_text(out_text, numbered(gzip_lines([archive]), LM_TEXT_PREFIX))
