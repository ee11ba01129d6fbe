"""Stage 13: write ``ref.trn`` / ``hyp.trn`` for word or character error rates, as ESPnet does.

Each line is ``<tokens>\\t(<speaker>-<utterance>)``. Tokens come from ESPnet's own word or
character tokenizer (characters keep ``<space>`` between words, so the CER counts word
boundaries too), non-linguistic symbols are removed, and the text cleaner is applied to
the reference only. Lines follow the reference ``text``; an utterance the decoder did not
output is scored as an empty hypothesis (all deletions) rather than silently skipped.
"""
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from espnet_dynenc.recipe.tables import read_table, write_lines

TOKEN_TYPES = ("word", "char")


def build_tokenize(token_type: str, non_linguistic_symbols: Optional[str]) -> Callable[[str], List[str]]:
    """ESPnet's tokenizer of ``token_type``, removing non-linguistic symbols."""
    nlsyms = None if non_linguistic_symbols in (None, "", "none") else non_linguistic_symbols
    if token_type == "word":
        from espnet2.text.word_tokenizer import WordTokenizer

        tokenizer = WordTokenizer(non_linguistic_symbols=nlsyms, remove_non_linguistic_symbols=True)
    elif token_type == "char":
        from espnet2.text.char_tokenizer import CharTokenizer

        tokenizer = CharTokenizer(non_linguistic_symbols=nlsyms, remove_non_linguistic_symbols=True)
    else:
        raise ValueError(f"token type '{token_type}' is not one of {TOKEN_TYPES}")
    return tokenizer.text2tokens


def build_cleaner(cleaner: Optional[str]) -> Callable[[str], str]:
    """ESPnet's text cleaner, or the identity for 'none' (its import is slow, so only on demand)."""
    if cleaner in (None, "", "none"):
        return lambda text: text
    from espnet2.text.cleaner import TextCleaner

    return TextCleaner(cleaner)


def trn_line(tokens: List[str], speaker: str, utt: str) -> str:
    return " ".join(tokens) + f"\t({speaker}-{utt})"


def normalise_spaces(text: str) -> str:
    """What ``tokenize_text --field 2-`` sees: words joined by single spaces."""
    return " ".join(text.split())


def write_trn_pair(
    ref_text: Path,
    hyp_text: Path,
    utt2spk: Path,
    token_type: str,
    out_dir: Path,
    non_linguistic_symbols: Optional[str] = None,
    cleaner: Optional[str] = None,
) -> Tuple[int, int]:
    """Write ``out_dir/{ref,hyp}.trn``; return (utterances, hypotheses missing)."""
    refs = read_table(ref_text)
    hyps = read_table(hyp_text)
    speakers = read_table(utt2spk)
    tokenize = build_tokenize(token_type, non_linguistic_symbols)
    clean = build_cleaner(cleaner)
    ref_lines, hyp_lines = [], []
    for utt, words in refs.items():
        speaker = _speaker(speakers, utt, utt2spk)
        ref_lines.append(trn_line(tokenize(clean(normalise_spaces(words))), speaker, utt))
        hyp_lines.append(trn_line(tokenize(normalise_spaces(hyps.get(utt, ""))), speaker, utt))
    missing = sum(1 for utt in refs if utt not in hyps)
    extra = sum(1 for utt in hyps if utt not in refs)
    if missing:
        logging.warning("%s: %d of %d utterances have no hypothesis; scored as empty", hyp_text, missing, len(refs))
    if extra:
        logging.warning("%s: %d hypotheses have no reference in %s; ignored", hyp_text, extra, ref_text)
    write_lines(out_dir / "ref.trn", ref_lines)
    write_lines(out_dir / "hyp.trn", hyp_lines)
    return len(refs), missing


def _speaker(speakers: Dict[str, str], utt: str, utt2spk: Path) -> str:
    if utt not in speakers:
        raise KeyError(f"{utt2spk}: no speaker for utterance '{utt}'")
    return speakers[utt]
