"""Fabricated experiment outputs in the layout asr.sh's stages 11-13 leave (test only).

No model and no torch: a scored decoding is its ``decode_stats.yaml``, sclite's summary line and
``ref.trn`` / ``hyp.trn`` made so that a chosen share of the utterances has one substitution.
Used by the comparison tests and by the stand-in run.sh of the run_comparison test.
"""
from pathlib import Path

import yaml

TRAIN_LOG = ("[vm] 2026-12-01 10:00:00,000 (trainer:336) INFO: 1/2epoch started\n"
             "[vm] 2026-12-01 10:0{m}:30,000 (trainer:394) INFO: 2epoch results: [train] loss=1.0\n")


def decoded(folder: Path, params: int, flops: float, wer: float, checkpoint: str = "valid.cer_ctc.ave.pth",
            **labels) -> None:
    """A scored output: 100 utterances of 5 words, round(5 x wer) of them with one substitution."""
    folder.mkdir(parents=True)
    (folder / "decode_stats.yaml").write_text(yaml.safe_dump({"parameters": params, "flops_per_second": flops,
                                                              "rtf": 0.01, "checkpoint": checkpoint, **labels}))
    for kind, value in (("wer", wer), ("cer", wer / 2)):
        (folder / f"score_{kind}").mkdir()
        (folder / f"score_{kind}" / "result.txt").write_text(
            f"| Sum/Avg|  200   1663 | 90.0  5.0  5.0  0.0 {value:5.1f} 50.0 |\n")
    wrong = round(5 * wer)
    (folder / "score_wer" / "ref.trn").write_text("".join(f"a b c d e\t(spk-u{i:03d})\n" for i in range(100)))
    (folder / "score_wer" / "hyp.trn").write_text("".join(f"{'x' if i < wrong else 'a'} b c d e\t(spk-u{i:03d})\n"
                                                          for i in range(100)))


def write_pruning_plan(root: Path, subnet: int, num_blocks: int, skip: dict, dev_cer: dict) -> None:
    """``<decode dir>/pruning/``: the plan (strategy -> depth -> removed blocks) and its dev scores."""
    pruning = root / "pruning"
    pruning.mkdir(parents=True)
    (pruning / "pruning_plan.yaml").write_text(yaml.safe_dump(
        {"subnet": subnet, "num_blocks": num_blocks, "skip_blocks": skip}))
    lines = ["strategy\tdepth\tskip_blocks\tparameters\tctc_loss\tcer"]
    for strategy, depths in skip.items():
        for depth, blocks in depths.items():
            lines.append(f"{strategy}\t{depth}\t{' '.join(map(str, blocks))}\t900\t12.0\t{dev_cer[strategy]:.3f}")
    (pruning / "dev_scores.tsv").write_text("\n".join(lines) + "\n")
