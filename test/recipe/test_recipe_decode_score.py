"""Stages 12-13 with a stand-in decoder: job splitting, merging per size, scoring, RESULTS.md.

The stand-in follows the decoder contract of espnet_dynenc.bin.ctc_greedy_inference (same
options, same output files) but makes its hypotheses from the reference text: size 16
drops each utterance's last word, larger sizes are perfect. No model is needed.
"""
import os
import subprocess
import textwrap
from pathlib import Path

import yaml

from espnet_dynenc.recipe.results_table import read_sum_avg
from recipe.conftest import done_markers, make_recipe, read_table, run_asr

FAKE_DECODER = textwrap.dedent('''
    """Stand-in for espnet_dynenc.bin.ctc_greedy_inference (test only)."""
    import argparse, os, sys, yaml
    from pathlib import Path

    SIZES = [16, 32, 48]
    p = argparse.ArgumentParser()
    for name in ("--asr_train_config", "--asr_model_file", "--key_file", "--output_dir"):
        p.add_argument(name, required=True)
    p.add_argument("--data_path_and_name_and_type", action="append", required=True)
    p.add_argument("--subnets", default="")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--size_model_file", action="append", default=[])
    args = p.parse_args()
    own = {int(e.split("=")[0]): e.split("=", 1)[1] for e in args.size_model_file}
    for path in (args.asr_train_config, args.asr_model_file):
        assert os.path.isfile(path), path
    data = Path(args.data_path_and_name_and_type[0].split(",")[0]).parent
    text = dict(l.rstrip("\\n").partition(" ")[::2] for l in open(data / "text"))
    samples = dict(l.split() for l in open(data / "utt2num_samples"))
    keys = [l.split()[0] for l in open(args.key_file) if l.strip()]
    sizes = [int(s) for s in args.subnets.split()] or SIZES
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "argv.txt").write_text("\\n".join(sys.argv[1:]))
    (out / "threads.txt").write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
    for size in sizes:
        folder = out / str(size)
        folder.mkdir()
        hyps = {k: " ".join(text[k].split()[:-1] if size == 16 else text[k].split()) for k in keys}
        for name, value in (("text", lambda k: hyps[k]), ("token", lambda k: hyps[k]),
                            ("token_int", lambda k: " ".join("1" for _ in hyps[k].split())),
                            ("score", lambda k: "-1.0")):
            (folder / name).write_text("".join(f"{k} {value(k)}".rstrip() + "\\n" for k in keys))
        audio = sum(int(samples[k]) for k in keys) / 16000
        spent = 0.01 * size * len(keys)
        stats = dict(subnet=size, num_utterances=len(keys), audio_seconds=audio, decode_seconds=spent,
                     rtf=spent / audio, parameters=size * 1000, flops_per_second=size * 1.0e6,
                     checkpoint=os.path.basename(own.get(size, args.asr_model_file)))
        (folder / "decode_stats.yaml").write_text(yaml.safe_dump(stats))
''')

SETS = {
    "test": [("spkA-t1", "the cat sat"), ("spkA-t2", "on a mat"), ("spkB-t3", "dog ran"), ("spkB-t4", "far away")],
    "other": [("spkC-o1", "a cat ran far"), ("spkC-o2", "the dog")],
}
DECODE_DIR = "exp/asr_tiny/decode_ctc_greedy_asr_model_valid.loss.ave_3best"


def write_dump_set(recipe: Path, name: str, utts):
    folder = recipe / "dump" / "raw" / name
    folder.mkdir(parents=True)
    lines = {
        "wav.scp": [f"{u} dump/raw/{name}/data/{u}.wav" for u, _ in utts],
        "text": [f"{u} {t}" for u, t in utts],
        "utt2spk": [f"{u} {u.split('-')[0]}" for u, _ in utts],
        "utt2num_samples": [f"{u} {8000 * (i + 1)}" for i, (u, _) in enumerate(utts)],
    }
    for file_name, content in lines.items():
        (folder / file_name).write_text("\n".join(sorted(content)) + "\n")
    (folder / ".done").write_text("made by the test\n")


def setup_recipe(tmp_path: Path) -> Path:
    recipe = make_recipe(tmp_path)
    for name, utts in SETS.items():
        write_dump_set(recipe, name, utts)
    exp = recipe / "exp" / "asr_tiny"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("encoder: dynamic_conformer\n")
    (exp / "valid.loss.ave_3best.pth").write_bytes(b"not a real model")
    (tmp_path / "fake_ctc_decoder.py").write_text(FAKE_DECODER)
    return recipe


def decode_and_score(recipe: Path, *extra: str):
    env = {"PYTHONPATH": str(recipe.parents[2])}  # where fake_ctc_decoder.py lives
    return run_asr(recipe, "--train_set", "train", "--valid_set", "dev", "--test_sets", "test other",
                   "--stage", "12", "--stop_stage", "13", "--inference_nj", "2", "--asr_exp", "exp/asr_tiny",
                   "--asr_inference_module", "fake_ctc_decoder", *extra, env=env)


def test_decoding_scoring_and_results_table(tmp_path):
    recipe = setup_recipe(tmp_path)
    proc = decode_and_score(recipe, "--subnets", "16 32")
    assert proc.returncode == 0, proc.stdout
    assert "valid.cer_ctc.ave.pth is not in exp/asr_tiny; decoding valid.loss.ave_3best.pth" in proc.stdout
    decode = recipe / DECODE_DIR

    # the jobs got the contract's options, one key shard each
    argv = (decode / "test/logdir/output.2/argv.txt").read_text().splitlines()
    for option, value in (("--asr_model_file", "exp/asr_tiny/valid.loss.ave_3best.pth"),
                          ("--asr_train_config", "exp/asr_tiny/config.yaml"),
                          ("--data_path_and_name_and_type", "dump/raw/test/wav.scp,speech,sound"),
                          ("--key_file", f"{DECODE_DIR}/test/logdir/keys.2.scp"),
                          ("--subnets", "16 32"), ("--batch_size", "8"), ("--ngpu", "0")):
        assert argv[argv.index(option) + 1] == value
    # two CPU jobs: one torch thread each (unless the caller's OMP_NUM_THREADS says otherwise)
    threads = (decode / "test/logdir/output.1/threads.txt").read_text()
    assert threads == os.environ.get("OMP_NUM_THREADS", "1")

    # merged per size: every utterance once, sorted; statistics summed, RTF a ratio of sums
    assert sorted(p.name for p in (decode / "test").iterdir() if p.is_dir()) == ["16", "32", "logdir"]
    assert list(read_table(decode / "test/16/text")) == ["spkA-t1", "spkA-t2", "spkB-t3", "spkB-t4"]
    assert read_table(decode / "test/16/text")["spkA-t1"] == "the cat"
    stats = yaml.safe_load((decode / "test/32/decode_stats.yaml").read_text())
    assert stats["num_jobs"] == 2 and stats["num_utterances"] == 4 and stats["subnet"] == 32
    assert abs(stats["audio_seconds"] - 5.0) < 1e-9  # (8000 + 16000 + 24000 + 32000) / 16000
    assert abs(stats["rtf"] - stats["decode_seconds"] / stats["audio_seconds"]) < 1e-12

    # scoring files in ESPnet's format
    score = decode / "test/16/score_wer"
    assert (score / "ref.trn").read_text().splitlines()[0] == "the cat sat\t(spkA-spkA-t1)"
    assert (score / "hyp.trn").read_text().splitlines()[0] == "the cat\t(spkA-spkA-t1)"
    summary = read_sum_avg(score / "result.txt")
    assert (summary.sentences, summary.words, summary.correct, summary.deletions, summary.errors) == (4, 10, 60.0, 40.0, 40.0)
    assert "<space>" in (decode / "test/16/score_cer/ref.trn").read_text()

    # one table, one row per size, also printed
    results = (recipe / "exp/asr_tiny/RESULTS.md").read_text()
    header = ("| size | parameters | FLOPs / s of audio | WER test (%) | WER other (%) | CER test (%) "
              "| CER other (%) | RTF test | RTF other |")
    assert header in results and header in proc.stdout
    rows = [line for line in results.splitlines() if line.startswith("| 16 |") or line.startswith("| 32 |")]
    assert rows[0].startswith("| 16 | 16k | 16M | 40.0 | 33.3 |")
    assert rows[1].startswith("| 32 | 32k | 32M | 0.0 | 0.0 | 0.0 | 0.0 |")
    assert len([line for line in results.splitlines() if line.startswith("| ")]) == 3

    markers = [p.relative_to(recipe).as_posix() for p in done_markers(recipe)]
    assert f"{DECODE_DIR}/test/.done" in markers and f"{DECODE_DIR}/other/32/.score.done" in markers

    again = decode_and_score(recipe, "--subnets", "16 32")
    assert again.returncode == 0 and again.stdout.count("already done") == 2 + 4

    # asking for a size that was not decoded decodes the set again
    more = decode_and_score(recipe, "--subnets", "32 48")
    assert more.returncode == 0, more.stdout
    assert "lacks some of the sizes 32 48; decoding test again" in more.stdout
    assert (decode / "test/48/score_wer/result.txt").is_file()


def test_all_sizes_when_subnets_is_empty(tmp_path):
    recipe = setup_recipe(tmp_path)
    proc = decode_and_score(recipe, "--inference_nj", "1", "--inference_threads", "3")
    assert proc.returncode == 0, proc.stdout
    assert (recipe / DECODE_DIR / "other/logdir/output.1/threads.txt").read_text() == "3"
    assert "1 job(s) of 3 thread(s)" in proc.stdout
    assert sorted(p.name for p in (recipe / DECODE_DIR / "other").iterdir() if p.is_dir()) == ["16", "32", "48", "logdir"]
    assert "| 48 | 48k | 48M | 0.0 | 0.0 |" in proc.stdout


def test_explicit_missing_checkpoint_is_an_error(tmp_path):
    recipe = setup_recipe(tmp_path)
    proc = decode_and_score(recipe, "--inference_asr_model", "valid.acc.ave.pth")
    assert proc.returncode == 1
    assert "--inference_asr_model: exp/asr_tiny/valid.acc.ave.pth does not exist" in proc.stdout
    zero = decode_and_score(recipe, "--inference_threads", "0")
    assert zero.returncode != 0 and "--inference_threads must be at least 1, got '0'" in zero.stdout
    assert not any("decode" in p.as_posix() for p in done_markers(recipe))


def test_each_size_from_its_own_checkpoint_where_training_made_one(tmp_path):
    recipe = setup_recipe(tmp_path)
    exp = recipe / "exp" / "asr_tiny"
    for name in ("valid.cer_ctc.ave.pth", "valid.cer_ctc_16.ave.pth", "valid.cer_ctc_48.ave.pth"):
        (exp / name).write_bytes(b"not a real model")
    proc = decode_and_score(recipe, "--subnets", "16 32")
    assert proc.returncode == 0, proc.stdout
    decode = exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave_per_size"
    argv = (decode / "test/logdir/output.1/argv.txt").read_text().splitlines()
    # size 48 is not decoded, so its checkpoint is not passed; 32 has none of its own
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--size_model_file"] == [
        "16=exp/asr_tiny/valid.cer_ctc_16.ave.pth"]
    assert argv[argv.index("--asr_model_file") + 1] == "exp/asr_tiny/valid.cer_ctc.ave.pth"
    results = (exp / "RESULTS.md").read_text()
    rows = {line.split(" | ")[0]: line for line in results.splitlines() if line.startswith("| 16 |")
            or line.startswith("| 32 |")}
    assert rows["| 16"].endswith("| `valid.cer_ctc_16.ave.pth` |") and rows["| 32"].endswith("| `valid.cer_ctc.ave.pth` |")
    assert "own checkpoints: --size_model_file 16=exp/asr_tiny/valid.cer_ctc_16.ave.pth" in proc.stdout

    # the full size's checkpoint for every size: the decoding of the other rule, beside it
    full = decode_and_score(recipe, "--subnets", "16 32", "--size_checkpoints", "false")
    assert full.returncode == 0, full.stdout
    argv = (exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave/test/logdir/output.1/argv.txt").read_text()
    assert "--size_model_file" not in argv
    assert decode.is_dir()
    bad = decode_and_score(recipe, "--size_checkpoints", "maybe")
    assert bad.returncode != 0 and "--size_checkpoints" in bad.stdout


def test_a_decoding_made_with_other_settings_is_decoded_again(tmp_path):
    recipe = setup_recipe(tmp_path)
    tagged = ("--subnets", "16 32", "--inference_tag", "mine", "--stop_stage", "12")
    assert decode_and_score(recipe, *tagged).returncode == 0
    done = (recipe / "exp/asr_tiny/decode_mine/test/.done").read_text().splitlines()
    assert done[-1].startswith("module=fake_ctc_decoder --asr_train_config exp/asr_tiny/config.yaml")
    same = decode_and_score(recipe, *tagged)
    assert same.returncode == 0 and same.stdout.count("already done") == 2
    # other decoding options, then another checkpoint, in the same directory: decoded again
    other = decode_and_score(recipe, *tagged, "--inference_args", "--num_workers 2")
    assert other.returncode == 0, other.stdout
    assert other.stdout.count("was decoded with other settings") == 2 and "already done" not in other.stdout
    argv = (recipe / "exp/asr_tiny/decode_mine/test/logdir/output.1/argv.txt").read_text().splitlines()
    assert argv[argv.index("--num_workers") + 1] == "2"
    (recipe / "exp/asr_tiny/valid.cer_ctc.ave.pth").write_bytes(b"another model")
    model = decode_and_score(recipe, *tagged, "--inference_args", "--num_workers 2")
    assert model.returncode == 0 and model.stdout.count("was decoded with other settings") == 2
    assert "(asr.sh:" in model.stdout and ":decode_set) Stage 12: decoding dump/raw/test with" in model.stdout
    # the same checkpoint written again (e.g. averaged again by average_checkpoints): decoded again
    (recipe / "exp/asr_tiny/valid.cer_ctc.ave.pth").write_bytes(b"another model, averaged again")
    rewritten = decode_and_score(recipe, *tagged, "--inference_args", "--num_workers 2")
    assert rewritten.returncode == 0 and rewritten.stdout.count("was decoded with other settings") == 2
    # one test set made again with an utterance less, the other with another transcript: decoded again
    test, other = recipe / "dump/raw/test", recipe / "dump/raw/other"
    (test / "wav.scp").write_text("".join((test / "wav.scp").read_text().splitlines(keepends=True)[:-1]))
    (other / "text").write_text((other / "text").read_text().replace("the dog", "a dog"))
    data_changed = decode_and_score(recipe, *tagged, "--inference_args", "--num_workers 2")
    assert data_changed.returncode == 0 and data_changed.stdout.count("was decoded with other settings") == 2
    done = (recipe / "exp/asr_tiny/decode_mine/test/.done").read_text().splitlines()
    assert done[-1].endswith(f" data=dump/raw/test[{' '.join(_cksum(recipe / 'dump/raw/test/wav.scp'))}]"
                             f"[{' '.join(_cksum(recipe / 'dump/raw/test/text'))}]")
    assert decode_and_score(recipe, *tagged, "--inference_args", "--num_workers 2").stdout.count("already done") == 2


def _cksum(path: Path) -> list:
    """POSIX cksum's checksum and byte count of ``path``, as asr.sh's file_digest writes them."""
    return subprocess.run(["cksum"], stdin=open(path, "rb"), capture_output=True, text=True,
                          check=True).stdout.split()[:2]


def asr_sh_functions(*names: str) -> str:
    """The definitions of asr.sh's functions ``names``, to run them on their own."""
    import re

    text = (Path(__file__).resolve().parents[2] / "egs2/TEMPLATE/asr1/asr.sh").read_text()
    return "\n".join(re.search(rf"^{name}\(\) {{\n.*?^}}\n", text, re.M | re.S).group(0) for name in names)


def test_one_helper_decides_whether_work_is_current(tmp_path):
    import subprocess

    script = asr_sh_functions("is_done", "mark_done", "is_current", "decoding_settings", "file_digest") + """
set -eu
cd "$1"
echo "subnet: 24" >plan.yaml
settings=$(decoding_settings my.decoder --asr_model_file a.pth --pruning_plan plan.yaml --lm_weight 0.5)
is_current d/.done "${settings}" && echo "current before it is done"
mark_done d/.done "${settings}"
is_current d/.done "${settings}" && echo "current when done with these settings"
is_current d/.done "$(decoding_settings my.decoder --asr_model_file b.pth --pruning_plan plan.yaml --lm_weight 0.5)" ||
    echo "stale with another model"
echo "subnet: 16" >plan.yaml
is_current d/.done "$(decoding_settings my.decoder --asr_model_file a.pth --pruning_plan plan.yaml --lm_weight 0.5)" ||
    echo "stale with another plan"
echo "weights" >s16.pth
settings=$(decoding_settings my.decoder --asr_model_file a.pth --size_model_file 16=s16.pth)
mark_done d/.done "${settings}"
echo "weights averaged again" >s16.pth
is_current d/.done "$(decoding_settings my.decoder --asr_model_file a.pth --size_model_file 16=s16.pth)" ||
    echo "stale with a size's checkpoint written again"
settings=$(decoding_settings my.decoder --asr_model_file a.pth --pruning_plan plan.yaml --lm_weight 0.5)
mark_done d/.done
is_current d/.done "${settings}" || echo "stale when its settings are not written"
"""
    proc = subprocess.run(["bash", "-c", script, "asr.sh", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["current when done with these settings", "stale with another model",
                                        "stale with another plan", "stale with a size's checkpoint written again",
                                        "stale when its settings are not written"]


def test_each_pruned_depth_finds_its_own_checkpoint_and_names_it_in_the_settings(tmp_path):
    """find_depth_checkpoints: the exit's average beside the decoded checkpoint, for the depths
    of --prune_depths only; decoder_options passes it with the plan, so the settings line of a
    decoding (is_current) changes with it."""
    import subprocess

    script = asr_sh_functions("find_depth_checkpoints", "decoder_options", "decoding_settings", "file_digest") + """
set -eu
cd "$1"
asr_exp=exp size_checkpoints=true inference_config= inference_args= use_lm=false batch_size=8 size_model_opts=()
mkdir -p exp
touch exp/valid.cer_ctc.ave.pth exp/valid.cer_interctc_layer2.ave.pth exp/valid.cer_interctc_layer4.ave.pth \
    exp/valid.loss_interctc_layer2.ave_3best.pth exp/valid.cer_interctc_layer2.best.pth plan.yaml
echo "cer: $(find_depth_checkpoints valid.cer_ctc.ave.pth "5 4,2" | tr '\\n' ' ')"
echo "loss: $(find_depth_checkpoints valid.loss_ctc.ave_3best.pth "4 2" | tr '\\n' ' ')"
echo "other depths: $(find_depth_checkpoints valid.cer_ctc.ave.pth "3" | tr '\\n' ' ')"
echo "other criterion: $(find_depth_checkpoints valid.acc.ave.pth "2" | tr '\\n' ' ')"
echo "no pruning: $(find_depth_checkpoints valid.cer_ctc.ave.pth "" | tr '\\n' ' ')"
size_checkpoints=false
echo "full model's rule: $(find_depth_checkpoints valid.cer_ctc.ave.pth "2" | tr '\\n' ' ')"
size_checkpoints=true
mapfile -t depth_model_opts < <(find_depth_checkpoints valid.cer_ctc.ave.pth "4 2")
mapfile -t options < <(decoder_options my.decoder greedy valid.cer_ctc.ave.pth plan.yaml)
echo "options: ${options[*]:1}"
mapfile -t without_plan < <(decoder_options my.decoder greedy valid.cer_ctc.ave.pth "")
echo "without a plan: ${without_plan[*]:1}"
own=$(decoding_settings "${options[@]}")
depth_model_opts=()
mapfile -t options < <(decoder_options my.decoder greedy valid.cer_ctc.ave.pth plan.yaml)
[ "$(decoding_settings "${options[@]}")" = "${own}" ] || echo "the settings name the depth checkpoints"
"""
    proc = subprocess.run(["bash", "-c", script, "asr.sh", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "cer: --depth_model_file 4=exp/valid.cer_interctc_layer4.ave.pth "
        "--depth_model_file 2=exp/valid.cer_interctc_layer2.ave.pth ",
        "loss: --depth_model_file 2=exp/valid.loss_interctc_layer2.ave_3best.pth ",
        "other depths: ",
        "other criterion: ",
        "no pruning: ",
        "full model's rule: ",
        "options: --asr_train_config exp/config.yaml --asr_model_file exp/valid.cer_ctc.ave.pth --pruning_plan "
        "plan.yaml --depth_model_file 4=exp/valid.cer_interctc_layer4.ave.pth --depth_model_file "
        "2=exp/valid.cer_interctc_layer2.ave.pth --batch_size 8",
        "without a plan: --asr_train_config exp/config.yaml --asr_model_file exp/valid.cer_ctc.ave.pth --batch_size 8",
        "the settings name the depth checkpoints",
    ]
