"""``import espnet_dynenc`` registers the classes with ESPnet's ASR task, in either import order."""
import subprocess
import sys
import textwrap

import pytest

from tiny_asr import REPO

CHECK = """
from espnet2.tasks.asr import encoder_choices, model_choices, ASRTask
parser = ASRTask.get_parser()
args = parser.parse_args(["--encoder", "dynamic_conformer", "--model", "supernet_ctc", "--token_list", "x"])
print(encoder_choices.get_class(args.encoder).__name__, model_choices.get_class(args.model).__name__)
"""


@pytest.mark.parametrize("first", ["import espnet_dynenc", "import espnet2.tasks.asr; import espnet_dynenc"])
def test_registration_in_fresh_interpreter(first):
    code = first + "\n" + textwrap.dedent(CHECK)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["DynamicConformerEncoder", "ESPnetSupernetCTCModel"]


def test_package_import_is_light():
    code = "import sys, espnet_dynenc, espnet_dynenc.corpora.kaldi_dir; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_stock_entry_point_rejects_the_encoder_without_the_package():
    proc = subprocess.run([sys.executable, "-m", "espnet2.bin.asr_train", "--encoder", "dynamic_conformer",
                           "--print_config"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode != 0 and "dynamic_conformer" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.asr_train", "--encoder", "dynamic_conformer",
                           "--model", "supernet_ctc", "--token_list", "x", "--print_config"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "encoder: dynamic_conformer" in proc.stdout
