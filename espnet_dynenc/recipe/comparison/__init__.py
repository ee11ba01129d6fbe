"""COMPARISON.md and comparison.png: every method of a recipe's comparison, side by side.

``run_comparison.sh`` trains and decodes each run of a plan (``conf/comparison_plan.tsv``)
through asr.sh and lists the finished runs in a manifest, one line per run::

    <method> <role> <seed> <experiment dir>

Roles say what a run is compared as:

``supernet``  one model decoded at several sizes (Dynamic Encoder Size, Aux-Loss);
``alone``     a model trained for its one size (the individually trained baseline);
``pruned``    one model whose blocks are removed at run time (layer pruning on demand);
              the best strategy per depth is the one with the lowest dev CER (then dev
              CTC loss) in its plan's ``dev_scores.tsv``, never chosen on test;
``dmao``      a reallocated single-size model, against the ``alone`` model of its size.

A role may carry a training regime, ``<role>@<regime>`` (e.g. ``supernet@2x``, ``alone@2x``:
trained for twice the comparison's updates); a plain role is the comparison's own regime,
``1x``. Runs are set only against runs of their own regime: a supernet at 2x against the
sizes trained alone at 2x, never against the 1x ones, so a longer schedule cannot borrow
the shorter one's baseline. Every regime's rows are shown next to the others', and per
size the supernet-minus-alone gap of each regime with its interval (does the gap close
with longer training?).

Each run's numbers come from the files asr.sh leaves: ``<size>/decode_stats.yaml``
(parameters, FLOPs per second of audio, the checkpoint decoded) and
``score_{wer,cer}/result.txt`` per test set, the word errors of every utterance (from
``score_wer/{ref,hyp}.trn``), the plan's ``dev_scores.tsv``, the training's ``train.log``
(wall time: from the first epoch started to the last epoch finished, summed over the logs
of a resumed run) and its checkpoint (parameters, optimizer updates). A run that starts
from a converted model (its config's ``init_param`` names ``<dir>/model.pth`` and
``<dir>/init.yaml`` names the experiment it was converted from) counts that experiment's
training too, as its pre-training. A supernet whose
sizes have their own checkpoints (asr.sh ``--size_checkpoints``) is read from the
decoding of that rule (``<decode dir>_per_size``), and from the decoding of the full-size
rule too, when there is one, so the effect of the rule is reported.

A run's numbers are kept in a small summary (:func:`summaries.summarise_run`, one JSON file per
run, in the recipe's ``comparison_runs/``), so the tables can be written again, and an
interrupted comparison finished, on a machine that does not have the experiment dirs.

Rows over seeds show the mean, and the sample standard deviation when there are two seeds
or more. Every claim (a size against that size trained alone, a pruned depth against that
depth trained alone, DMAO against its uniform model, each trained-alone size against the
next smaller one) gets the difference in WER with a 95% interval from a paired bootstrap
over the test utterances, seeds pooled (``espnet_dynenc.scoring.bootstrap``), and a
verdict read from that interval.

Which module holds what (each imports only modules above it)::

    runs        the manifest, Run, roles and regimes, which decoding a run is read from
    decodings   Measured: a run's sizes and pruned depths read from its decodings
    cost        TrainingCost: a run's training (and pre-training) from its logs and checkpoint
    claims      Collected (every run's numbers together), the claims, their intervals, verdicts
    summaries   the JSON summary of each run, the test sets, collecting every run's numbers
    report      the Markdown tables of COMPARISON.md and comparison.png
"""
