# Job runners for asr.sh, chosen by cmd_backend (set it here or in the environment):
#
#   local  run jobs on this machine with utils/run.pl (parallel up to the number of CPUs)
#   slurm  submit them with utils/slurm.pl (sbatch --wait); set the partitions below
#
# train_cmd runs data preparation and statistics jobs, decode_cmd decoding jobs and
# cuda_cmd GPU work (training, GPU decoding). All take Kaldi's run.pl arguments:
#   ${train_cmd} [--gpu N] [JOB=1:N] <log-file> <command...>
# Recipes keep their own copy of this file to adapt it to their cluster.
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local)
        export train_cmd="utils/run.pl"
        export decode_cmd="utils/run.pl"
        export cuda_cmd="utils/run.pl"
        ;;
    slurm)
        # e.g. slurm_opts="--partition cpu --gpu_partition gpu --time 2-00:00:00"
        slurm_opts=${slurm_opts:-}
        export train_cmd="utils/slurm.pl ${slurm_opts}"
        export decode_cmd="utils/slurm.pl ${slurm_opts} --mem 8G"
        export cuda_cmd="utils/slurm.pl ${slurm_opts}"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        return 1 2>/dev/null || exit 1
        ;;
esac
