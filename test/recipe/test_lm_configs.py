"""The recipes' LM and LM-decoding configs are ones ESPnet and the beam decoder accept."""
import subprocess
import sys
import textwrap

import pytest

from espnet_dynenc.recipe.decode_check import DecodingSetup, check_decoding
from recipe.conftest import REPO

CORPORA = ["librispeech", "tedlium2", "mini_synth"]


@pytest.mark.parametrize("corpus", CORPORA)
def test_decoding_config_is_a_beam_search_with_the_lm(corpus):
    config = REPO / "egs2" / corpus / "asr1" / "conf" / "decode_lm.yaml"
    assert check_decoding(DecodingSetup(inference_config=str(config), use_lm=True)) == "beam"


def test_lm_configs_build_espnet_language_models(tmp_path):
    """ESPnet's lm_train parses each config and builds its LM (over a small token list)."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "a", "b", "<sos/eos>"]) + "\n")
    configs = [str(REPO / "egs2" / corpus / "asr1" / "conf" / "train_lm.yaml") for corpus in CORPORA]
    code = textwrap.dedent(f"""
        from espnet2.tasks.lm import LMTask
        for config in {configs!r}:
            args = LMTask.get_parser().parse_args(["--config", config, "--token_list", "{tokens}"])
            model = LMTask.build_model(args)
            print(config, type(model.lm).__name__, sum(p.numel() for p in model.parameters()))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    built = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.startswith("/")}
    assert [built[config][0] for config in configs] == ["TransformerLM", "SequentialRNNLM", "SequentialRNNLM"]
