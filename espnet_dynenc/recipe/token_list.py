"""Stage 5: train a sentencepiece model and write ESPnet's token list for it.

ESPnet's token list puts the CTC blank first (id 0), then ``<unk>``, the model's pieces
and ``<sos/eos>`` last. sentencepiece's own vocabulary starts with ``<unk>``, ``<s>`` and
``</s>``; those three are dropped because ESPnet adds its own symbols.
"""
from pathlib import Path
from typing import List, Sequence

from espnet_dynenc.recipe.tables import read_lines, write_lines

BLANK = "<blank>"
OOV = "<unk>"
SOS_EOS = "<sos/eos>"
SENTENCEPIECE_SPECIALS = 3  # <unk>, <s>, </s>


def transcripts_only(text_file: Path, out_file: Path) -> int:
    """Write the text of ``<utt> <words>`` lines without the ids; return the line count."""
    lines = [line.partition(" ")[2].strip() for line in read_lines(text_file)]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{text_file}: no transcripts to learn tokens from")
    write_lines(out_file, lines)
    return len(lines)


def train_sentencepiece(
    text_file: Path,
    model_prefix: Path,
    vocab_size: int,
    model_type: str,
    character_coverage: float = 1.0,
    input_sentence_size: int = 100000000,
    user_defined_symbols: Sequence[str] = (),
) -> Path:
    """Train ``<model_prefix>.model`` / ``.vocab``; return the model path."""
    import sentencepiece

    options = dict(
        input=str(text_file),
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        input_sentence_size=input_sentence_size,
    )
    if user_defined_symbols:
        options["user_defined_symbols"] = list(user_defined_symbols)
    sentencepiece.SentencePieceTrainer.train(**options)
    return Path(f"{model_prefix}.model")


def bpe_token_list(vocab_file: Path) -> List[str]:
    """``<blank>``, ``<unk>``, the pieces of ``vocab_file`` in its order, ``<sos/eos>``."""
    pieces = [line.split("\t")[0] for line in read_lines(vocab_file)][SENTENCEPIECE_SPECIALS:]
    return [BLANK, OOV] + pieces + [SOS_EOS]


def write_bpe_token_list(vocab_file: Path, token_list: Path) -> int:
    tokens = bpe_token_list(vocab_file)
    write_lines(token_list, tokens)
    return len(tokens)
